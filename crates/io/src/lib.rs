//! Reading and writing Palisade's tables and event files.
//!
//! - Tables ([`palisade_core::Table`]): CSV (header row), JSON lines, Parquet.
//!   Parquet files carry the feature schema and column roles in their key-value
//!   metadata (`palisade.schema`, `palisade.roles`), so a table written by
//!   `palisade features` is read back with its identity columns still marked.
//! - Events ([`palisade_core::Event`]): JSON lines (sparse, ECS names), CSV and
//!   Parquet (one column per [`palisade_core::EVENT_FIELDS`] entry).
//! - Every write is atomic: a temporary file in the target's directory, then a
//!   rename, so a crash never leaves a half-written model or table behind.
//!
//! Architecture invariant: this is the only crate (with ingest's readers and the
//! CLI) that touches the file system; features, models and intel matching are pure.

mod events;
mod parquet_io;
mod tables;

pub use events::{for_each_event, read_events, EventFormat, EventWriter};
pub use tables::{
    read_table, write_table, write_table_as, ReadTableOptions, TableFormat, TableWriter,
    DEFAULT_LABEL_COLUMN, IDENTITY_COLUMN_NAMES,
};

use std::io::Write;
use std::path::{Path, PathBuf};

/// Errors of reading and writing files. Each names the file, and the line or
/// column where there is one.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    // `cause`, not `source`: the message already carries the OS error, and a
    // `source` would make `{:#}` chains print it twice.
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}: line {line}: {message}")]
    Line {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{path}: cannot tell the format from the extension; use .csv, .jsonl/.json/.ndjson or .parquet")]
    UnknownFormat { path: PathBuf },
}

impl IoError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        IoError::Io {
            path: path.to_path_buf(),
            cause: source,
        }
    }
    pub(crate) fn format(path: &Path, message: impl Into<String>) -> Self {
        IoError::Format {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

/// Write `bytes` to `path` atomically (temporary file in the same directory,
/// fsync, rename).
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    atomic_write_with(path, |w| w.write_all(bytes))
}

/// Write to `path` atomically through a closure that fills a buffered writer.
pub fn atomic_write_with<F>(path: &Path, fill: F) -> Result<(), IoError>
where
    F: FnOnce(&mut dyn Write) -> std::io::Result<()>,
{
    let mut tmp = AtomicFile::create(path)?;
    fill(tmp.writer()).map_err(|e| IoError::io(path, e))?;
    tmp.commit()
}

/// A file being written that appears at its final path only on [`AtomicFile::commit`].
/// Dropped without commit, the temporary file is removed.
pub struct AtomicFile {
    path: PathBuf,
    writer: std::io::BufWriter<tempfile::NamedTempFile>,
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<Self, IoError> {
        let tmp = temp_beside(path)?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            writer: std::io::BufWriter::with_capacity(1 << 16, tmp),
        })
    }

    pub fn writer(&mut self) -> &mut dyn Write {
        &mut self.writer
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn commit(self) -> Result<(), IoError> {
        let path = self.path;
        let tmp = self
            .writer
            .into_inner()
            .map_err(|e| IoError::io(&path, e.into_error()))?;
        persist(tmp, &path)
    }
}

/// Writes go to the temporary file (so that writers such as `csv::Writer`
/// can own an `AtomicFile`).
impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}

/// A temporary file in the directory of `path` (created if needed), so the
/// final rename stays on one file system and is atomic.
pub(crate) fn temp_beside(path: &Path) -> Result<tempfile::NamedTempFile, IoError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.exists() {
        std::fs::create_dir_all(&dir).map_err(|e| IoError::io(&dir, e))?;
    }
    tempfile::Builder::new()
        .prefix(".palisade-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|e| IoError::io(path, e))
}

/// Make the temporary file readable, flush it to disk and rename it over `path`.
pub(crate) fn persist(tmp: tempfile::NamedTempFile, path: &Path) -> Result<(), IoError> {
    set_readable_mode(tmp.as_file(), path)?;
    tmp.as_file().sync_all().map_err(|e| IoError::io(path, e))?;
    tmp.persist(path).map_err(|e| IoError::io(path, e.error))?;
    Ok(())
}

/// Temporary files are created 0600; outputs are meant to be read by other
/// tools and people, so give them the usual 0644 before the rename.
pub(crate) fn set_readable_mode(file: &std::fs::File, path: &Path) -> Result<(), IoError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(|e| IoError::io(path, e))?;
    }
    #[cfg(not(unix))]
    let _ = (file, path);
    Ok(())
}

/// Open a file for reading, transparently gunzipping `.gz` (by magic bytes),
/// and reading standard input for `-`.
pub fn open_input(path: &Path) -> Result<Box<dyn std::io::BufRead>, IoError> {
    use std::io::{BufRead, BufReader, Read};
    if path.as_os_str() == "-" {
        return Ok(Box::new(BufReader::new(std::io::stdin())));
    }
    let f = std::fs::File::open(path).map_err(|e| IoError::io(path, e))?;
    let mut r = BufReader::with_capacity(1 << 16, f);
    let head = r.fill_buf().map_err(|e| IoError::io(path, e))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let gz = flate2::read::MultiGzDecoder::new(r);
        Ok(Box::new(BufReader::with_capacity(1 << 16, gz)) as Box<dyn BufRead>)
    } else {
        Ok(Box::new(r.take(u64::MAX)) as Box<dyn BufRead>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/out.txt");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn failed_write_leaves_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.txt");
        atomic_write(&p, b"keep").unwrap();
        let r = atomic_write_with(&p, |w| {
            w.write_all(b"partial")?;
            Err(std::io::Error::other("boom"))
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"keep");
    }
}
