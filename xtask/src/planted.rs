//! Opening files that someone else could have planted or swapped: the host
//! lock in world-writable /run/lock, records in the cache, a path taken from
//! the environment. Such a file is opened without following a link, without
//! blocking on a FIFO and without taking a terminal, and kept only if what was
//! opened (not the path: what is checked is what is used) is a regular file.
//! [`read`] adds a bound: what a caller reads is never larger than it expects.

use std::fs::{File, Metadata, OpenOptions};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

/// Why [`open`] refused a path; each caller words it for its file.
#[derive(Debug)]
pub enum Refused {
    /// The path is a symbolic link.
    Link,
    /// The path opened, but is not a regular file (a FIFO, a device, a directory).
    NotRegular,
    /// Any other error of the open or of `fstat` (a missing file included).
    Io(std::io::Error),
}

/// Open `path` as `options` say, but never through a link, and keep it only
/// when it is a regular file; returns it with its metadata.
pub fn open(path: &Path, options: &mut OpenOptions) -> Result<(File, Metadata), Refused> {
    // O_NOFOLLOW: a symbolic link fails with ELOOP; O_NONBLOCK: a FIFO does not
    // block the open; O_NOCTTY: a terminal does not become ours.
    let file = options
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| if e.raw_os_error() == Some(libc::ELOOP) { Refused::Link } else { Refused::Io(e) })?;
    let meta = file.metadata().map_err(Refused::Io)?;
    if !meta.is_file() {
        return Err(Refused::NotRegular);
    }
    Ok((file, meta))
}

/// Why [`read`] did not return a file's text; each caller words it for its file.
#[derive(Debug)]
pub enum Unread {
    /// [`open`] refused the path (a missing file is [`Refused::Io`], see [`Unread::is_missing`]).
    Refused(Refused),
    /// Larger than the caller's bound (or it grew past it while being read).
    TooLarge,
    /// Not UTF-8 text.
    NotText,
    /// Reading failed.
    Io(std::io::Error),
}

impl std::fmt::Display for Unread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unread::Refused(Refused::Link) => f.write_str("a symbolic link"),
            Unread::Refused(Refused::NotRegular) => f.write_str("not a regular file"),
            Unread::Refused(Refused::Io(e)) | Unread::Io(e) => write!(f, "{e}"),
            Unread::TooLarge => f.write_str("too large"),
            Unread::NotText => f.write_str("not UTF-8 text"),
        }
    }
}

impl Unread {
    /// Whether the file does not exist.
    pub fn is_missing(&self) -> bool {
        matches!(self, Unread::Refused(Refused::Io(e)) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

/// The text of the file at `path`, opened as [`open`] does (no link, no
/// FIFO, a regular file), and at most `max` bytes: a larger file is refused
/// before it is read, and one that grows past `max` while read is refused too.
pub fn read(path: &Path, max: u64) -> Result<String, Unread> {
    let (file, meta) = open(path, OpenOptions::new().read(true)).map_err(Unread::Refused)?;
    String::from_utf8(bounded(file, &meta, max)?).map_err(|_| Unread::NotText)
}

/// The bytes of the file `rel` beneath `root`, reached as [`open_beneath`]
/// reaches it (no link on any component), at most `max` of them as [`read`].
pub fn read_beneath(root: &Path, rel: &Path, max: u64) -> Result<Vec<u8>, Unread> {
    let (file, meta) = open_beneath(root, rel).map_err(Unread::Refused)?;
    bounded(file, &meta, max)
}

/// All of `file`, refused when longer than `max` bytes: a planted file must
/// not make the reader allocate without bound.
fn bounded(file: File, meta: &Metadata, max: u64) -> Result<Vec<u8>, Unread> {
    use std::io::Read as _;
    if meta.len() > max {
        return Err(Unread::TooLarge);
    }
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1)).read_to_end(&mut bytes).map_err(Unread::Io)?;
    if bytes.len() as u64 > max {
        return Err(Unread::TooLarge);
    }
    Ok(bytes)
}

/// Open `rel` (plain names only: no `..`, no root) beneath the directory
/// `root` for reading, following no link on the way: every directory on the
/// path is opened with `O_NOFOLLOW | O_DIRECTORY` relative to the one before
/// it, and the file as [`open`] does. For directories others filled (a cache
/// copied from another host): a link anywhere below `root` is refused.
pub fn open_beneath(root: &Path, rel: &Path) -> Result<(File, Metadata), Refused> {
    let dir = walk_beneath(root, rel.parent().unwrap_or(Path::new("")))?;
    let name = rel.file_name().ok_or(Refused::NotRegular)?;
    let file = openat(&dir, name.as_ref(), libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)?;
    let meta = file.metadata().map_err(Refused::Io)?;
    if !meta.is_file() {
        return Err(Refused::NotRegular);
    }
    Ok((file, meta))
}

/// The names in the directory `rel` beneath `root`, reached as
/// [`open_beneath`] reaches a file (no link followed); sorted.
pub fn list_beneath(root: &Path, rel: &Path) -> Result<Vec<String>, Refused> {
    let dir = walk_beneath(root, rel)?;
    // The open descriptor's directory, not a path that could be swapped meanwhile.
    let listing =
        std::fs::read_dir(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&dir))).map_err(Refused::Io)?;
    let mut names: Vec<String> =
        listing.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect();
    names.sort();
    Ok(names)
}

/// `root` (named by the user, opened as given), then each plain name of `rel` as a directory, no link followed.
fn walk_beneath(root: &Path, rel: &Path) -> Result<File, Refused> {
    let mut dir = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(root)
        .map_err(Refused::Io)?;
    for part in rel.components() {
        let std::path::Component::Normal(name) = part else { return Err(Refused::NotRegular) };
        dir = openat(&dir, name.as_ref(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW)?;
    }
    Ok(dir)
}

fn openat(dir: &File, name: &Path, flags: libc::c_int) -> Result<File, Refused> {
    use std::os::fd::{AsRawFd as _, FromRawFd as _};
    use std::os::unix::ffi::OsStrExt as _;
    let name = std::ffi::CString::new(name.as_os_str().as_bytes()).map_err(|_| Refused::NotRegular)?;
    // SAFETY: a valid directory descriptor and a NUL-terminated name; the
    // returned descriptor is owned by the File from here on.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ELOOP) => Refused::Link,
            // O_DIRECTORY on a link fails with ENOTDIR, not ELOOP: ask what is there.
            Some(libc::ENOTDIR) => {
                // SAFETY: as above; `st` is written by the call.
                let mut st: libc::stat = unsafe { std::mem::zeroed() };
                let r = unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
                if r == 0 && st.st_mode & libc::S_IFMT == libc::S_IFLNK {
                    Refused::Link
                } else {
                    Refused::NotRegular
                }
            }
            _ => Refused::Io(e),
        });
    }
    // SAFETY: `fd` was just opened and is not owned elsewhere.
    Ok(unsafe { File::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_fifos_and_directories_are_refused_regular_files_open() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let fifo = dir.path().join("p");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let read = || {
            let mut o = OpenOptions::new();
            o.read(true);
            o
        };
        assert!(matches!(open(&link, &mut read()), Err(Refused::Link)));
        // Opening a FIFO for reading would wait for a writer without O_NONBLOCK.
        assert!(matches!(open(&fifo, &mut read()), Err(Refused::NotRegular)));
        assert!(matches!(open(dir.path(), &mut read()), Err(Refused::NotRegular)));
        assert!(matches!(open(&dir.path().join("none"), &mut read()), Err(Refused::Io(_))));
        let (_, meta) = open(&file, &mut read()).unwrap();
        assert_eq!(meta.len(), 1);
    }

    #[test]
    fn read_is_bounded_and_refuses_what_open_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "four").unwrap();
        assert_eq!(read(&file, 4).unwrap(), "four");
        assert!(matches!(read(&file, 3), Err(Unread::TooLarge)));
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(matches!(read(&link, 10), Err(Unread::Refused(Refused::Link))));
        let fifo = dir.path().join("p");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(matches!(read(&fifo, 10), Err(Unread::Refused(Refused::NotRegular))));
        let missing = read(&dir.path().join("none"), 10).unwrap_err();
        assert!(missing.is_missing(), "{missing:?}");
        std::fs::write(&file, [0xff, 0xfe]).unwrap();
        assert!(matches!(read(&file, 10), Err(Unread::NotText)));
    }

    #[test]
    fn beneath_a_directory_no_link_is_followed_on_the_way() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.json"), "x").unwrap();
        std::fs::create_dir(root.path().join("results")).unwrap();
        std::fs::write(root.path().join("results/a.json"), "{}").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("linked")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.json"), root.path().join("results/b.json")).unwrap();
        assert_eq!(read_beneath(root.path(), Path::new("results/a.json"), 2).unwrap(), b"{}");
        assert!(matches!(read_beneath(root.path(), Path::new("results/a.json"), 1), Err(Unread::TooLarge)));
        assert!(matches!(
            read_beneath(root.path(), Path::new("results/b.json"), 10),
            Err(Unread::Refused(Refused::Link))
        ));
        assert!(matches!(open_beneath(root.path(), Path::new("linked/secret.json")), Err(Refused::Link)));
        assert!(matches!(open_beneath(root.path(), Path::new("results/b.json")), Err(Refused::Link)));
        assert!(matches!(open_beneath(root.path(), Path::new("../x")), Err(Refused::NotRegular)));
        assert_eq!(list_beneath(root.path(), Path::new("results")).unwrap(), ["a.json", "b.json"]);
        assert!(matches!(list_beneath(root.path(), Path::new("linked")), Err(Refused::Link)));
    }
}
