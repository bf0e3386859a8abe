//! Private bpffs mounts: each build under test pins its programs in its own
//! bpffs, mounted in a temporary directory and removed on every exit path.

use crate::error::{HarnessError, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::path::{Path, PathBuf};

/// Prefix of every mount directory; the pid follows, so stale mounts of dead
/// runs can be told apart from live ones.
const DIR_PREFIX: &str = "bfperf-bpffs-";

/// A bpffs mounted in a fresh temporary directory; unmounted and removed on drop.
#[derive(Debug)]
pub struct Bpffs {
    dir: Option<tempfile::TempDir>,
}

impl Bpffs {
    /// Mount a new private bpffs.
    pub fn mount() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{DIR_PREFIX}{}-", std::process::id()))
            .tempdir()
            .map_err(|e| HarnessError::io("cannot create a directory for the bpffs", e))?;
        mount(
            Some("bpf"),
            dir.path(),
            Some("bpf"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .map_err(|errno| HarnessError::BpffsMount { path: dir.path().to_owned(), reason: errno.desc().to_owned() })?;
        Ok(Bpffs { dir: Some(dir) })
    }

    /// The mount point, to pass to `bfcli -b`.
    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("mounted until dropped").path()
    }

    /// Where bpfilter pins the program of `chain` in this bpffs.
    pub fn prog_pin(&self, chain: &str) -> PathBuf {
        self.path().join("bpfilter").join(chain).join("bf_prog")
    }
}

impl Drop for Bpffs {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            // Lazy unmount: pins held open by our own fds must not block it.
            if let Err(errno) = umount2(dir.path(), MntFlags::MNT_DETACH) {
                eprintln!("warning: cannot unmount the bpffs at {}: {errno}", dir.path().display());
            }
            drop(dir);
        }
    }
}

/// Unmount bpffs left behind by runs that were killed without cleanup
/// (SIGKILL, power loss). Mounts of live processes are left alone.
/// Returns the mount points removed.
pub fn sweep_stale() -> Vec<PathBuf> {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return vec![];
    };
    let mut removed = vec![];
    for line in mountinfo.lines() {
        // Field 5 is the mount point; the filesystem type follows " - ".
        let mut fields = line.split(' ');
        let Some(mount_point) = fields.nth(4) else { continue };
        let Some((_, tail)) = line.split_once(" - ") else { continue };
        if !tail.starts_with("bpf ") {
            continue;
        }
        let path = PathBuf::from(mount_point);
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        let Some(rest) = name.strip_prefix(DIR_PREFIX) else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if umount2(&path, MntFlags::MNT_DETACH).is_ok() {
            let _ = std::fs::remove_dir(&path);
            removed.push(path);
        }
    }
    removed
}

/// The bfperf bpffs mounts currently present (for tests and `doctor`).
pub fn live_mounts() -> Vec<PathBuf> {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return vec![];
    };
    mountinfo
        .lines()
        .filter(|line| line.split_once(" - ").is_some_and(|(_, t)| t.starts_with("bpf ")))
        .filter_map(|line| line.split(' ').nth(4).map(PathBuf::from))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(DIR_PREFIX)))
        .collect()
}
