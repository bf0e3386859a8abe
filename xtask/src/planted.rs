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
    use std::io::Read as _;
    let (file, meta) = open(path, OpenOptions::new().read(true)).map_err(Unread::Refused)?;
    if meta.len() > max {
        return Err(Unread::TooLarge);
    }
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1)).read_to_end(&mut bytes).map_err(Unread::Io)?;
    if bytes.len() as u64 > max {
        return Err(Unread::TooLarge);
    }
    String::from_utf8(bytes).map_err(|_| Unread::NotText)
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
}
