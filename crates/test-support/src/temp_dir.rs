//! A directory for one test's files, removed when the test ends, also when it fails.

use std::path::{Path, PathBuf};

/// A new, empty directory under the system's temp dir, removed with its contents when dropped.
///
/// ```
/// let dir = mcp_test_support::TempDir::new("doc");
/// std::fs::write(dir.path().join("a.txt"), "a").unwrap();
/// let path = dir.path().to_owned();
/// drop(dir);
/// assert!(!path.exists());
/// ```
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates the directory; `label` starts its name, to tell whose it is.
    ///
    /// # Panics
    /// When the directory cannot be created: a test cannot go on without it.
    pub fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{label}-{}", crate::unique("dir")));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        Self(path)
    }

    /// Where the directory is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
