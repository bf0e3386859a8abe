//! Opening files that someone else could have planted or swapped: the host
//! lock in world-writable /run/lock, records in the cache, a path taken from
//! the environment. Such a file is opened without following a link, without
//! blocking on a FIFO and without taking a terminal, and kept only if what was
//! opened (not the path: what is checked is what is used) is a regular file.

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
}
