//! The blob store for uploaded files: a local directory by default, one folder per tenant,
//! files named by their upload id.

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

#[derive(Clone, Debug)]
pub struct Blobs {
    root: PathBuf,
}

impl Blobs {
    pub fn local(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, tenant: &str, id: &str) -> PathBuf {
        // Ids are UUIDs made by the server; anything else never reaches the file system.
        debug_assert!(uuid::Uuid::parse_str(id).is_ok());
        self.root.join(tenant).join(id)
    }

    /// Writes a blob (to a temporary name first, so a crash leaves no half file).
    pub async fn put(&self, tenant: &str, id: &str, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.path(tenant, id);
        let dir = path.parent().unwrap_or(Path::new("."));
        tokio::fs::create_dir_all(dir).await?;
        let tmp = path.with_extension("part");
        let mut file = tokio::fs::File::create(&tmp).await?;
        file.write_all(bytes).await?;
        file.sync_all().await?;
        tokio::fs::rename(&tmp, &path).await
    }

    pub async fn get(&self, tenant: &str, id: &str) -> std::io::Result<Vec<u8>> {
        tokio::fs::read(self.path(tenant, id)).await
    }
}
