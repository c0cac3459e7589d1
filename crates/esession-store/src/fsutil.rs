//! Private files: created 0600 (directories 0700) whatever the umask, and key
//! files refused when group or others can reach them.

use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::StoreError;
use crate::seal::KEY_LEN;

pub(crate) const FILE_MODE: u32 = 0o600;
pub(crate) const DIR_MODE: u32 = 0o700;

/// Creates the parent directory of `path` (0700) if it is missing. An existing
/// directory is left as it is (it may be the user's home).
pub(crate) fn ensure_parent_dir(path: &Path) -> Result<(), StoreError> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    if parent.is_dir() {
        return Ok(());
    }
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(parent)
        .map_err(|e| StoreError::io(parent, e))?;
    // The mode given to mkdir is masked by the umask; set it explicitly.
    fs::set_permissions(parent, Permissions::from_mode(DIR_MODE))
        .map_err(|e| StoreError::io(parent, e))
}

/// Creates `path`, which must not exist, with mode 0600 and writes `contents`
/// (synced to disk).
pub(crate) fn create_private_file(path: &Path, contents: &[u8]) -> Result<(), StoreError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(|e| match e.kind() {
            ErrorKind::AlreadyExists => StoreError::AlreadyExists {
                path: path.to_path_buf(),
            },
            _ => StoreError::io(path, e),
        })?;
    file.set_permissions(Permissions::from_mode(FILE_MODE))
        .map_err(|e| StoreError::io(path, e))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| StoreError::io(path, e))
}

/// Sets 0600 on the database and on whichever of its `-wal`/`-shm` companions
/// exist. (SQLite already creates the companions with the database's mode.)
pub(crate) fn restrict_db_files(db: &Path) -> Result<(), StoreError> {
    for path in db_files(db) {
        match fs::set_permissions(&path, Permissions::from_mode(FILE_MODE)) {
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            other => other.map_err(|e| StoreError::io(&path, e))?,
        }
    }
    Ok(())
}

/// The database file and its WAL-mode companions.
pub(crate) fn db_files(db: &Path) -> [PathBuf; 3] {
    let with_suffix = |suffix: &str| {
        let mut name = db.as_os_str().to_os_string();
        name.push(suffix);
        PathBuf::from(name)
    };
    [db.to_path_buf(), with_suffix("-wal"), with_suffix("-shm")]
}

/// Reads a 32-byte key file, refusing one that group or others may access.
pub(crate) fn read_key_file(path: &Path) -> Result<Zeroizing<[u8; KEY_LEN]>, StoreError> {
    let mut file = fs::File::open(path).map_err(|e| StoreError::io(path, e))?;
    let meta = file.metadata().map_err(|e| StoreError::io(path, e))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(StoreError::KeyFilePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    let invalid = || StoreError::KeyFileInvalid {
        path: path.to_path_buf(),
    };
    if !meta.is_file() || meta.len() != KEY_LEN as u64 {
        return Err(invalid());
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    file.read_exact(key.as_mut()).map_err(|e| match e.kind() {
        ErrorKind::UnexpectedEof => invalid(),
        _ => StoreError::io(path, e),
    })?;
    Ok(key)
}
