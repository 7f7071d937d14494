//! Precompiled components on disk, so a restart or a reload does not compile again.
//!
//! Compiling a component is slow (a Python rule, ~19 MB of interpreter and snapshot, takes
//! seconds); loading wasmtime's serialized form of the same compilation takes milliseconds.
//! But deserializing is `unsafe`: the bytes become executable code without validation, so
//! only artifacts this host wrote itself may ever be loaded. How that is guaranteed:
//!
//! - **An owner-only directory.** [`ArtifactCache::open`] creates it `0700` and refuses an
//!   existing one that another user owns or that group or others can access.
//! - **A key only this directory holds.** At first use the host writes 32 random bytes to
//!   `key` (`0600`, created exclusively). Every artifact carries an HMAC-SHA256, under that
//!   key, of its file name (component sha256 and engine fingerprint) and its bytes. A file
//!   copied in from elsewhere, truncated, corrupted, or renamed to another component's name
//!   fails the check and is deleted and recompiled; it is never deserialized.
//! - **Verified bytes are the bytes deserialized.** The file is read into memory, checked, and
//!   that same buffer is handed to wasmtime (no second read of a file that could have changed).
//! - **Keyed by what makes code compatible.** The name holds the component's sha256 and a
//!   fingerprint of [`wasmtime::Engine::precompile_compatibility_hash`] (target, compiler
//!   flags, tunables, features, wasmtime's version) plus this crate's version, so another
//!   engine configuration or release never even opens the file; wasmtime checks its own header
//!   again on deserialize.
//!
//! The trust boundary is the operating-system user: anyone who can write as that user can
//! also read `key`, and could equally replace the host binary. The cache protects against
//! everyone else, and against corruption and stale files. It is an optimisation: any failure
//! to read or write it is logged at WARN and the component is compiled as if it were absent.
//!
//! Files: `key`; `<sha256>-<fingerprint>.cwasm` = `TBART1\0\0`, 32-byte MAC, serialized
//! component; `.tmp-*` while being written (then renamed into place, so readers never see a
//! partial file). Nothing prunes old artifacts yet: delete the directory to reclaim space.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use crate::sandbox::error::{EngineError, LoadError};

const MAGIC: &[u8; 8] = b"TBART1\0\0";
const KEY_FILE: &str = "key";
const KEY_LEN: usize = 32;

/// An owner-only directory of precompiled components (see the module docs).
#[derive(Debug)]
pub(crate) struct ArtifactCache {
    dir: PathBuf,
    key: [u8; KEY_LEN],
    fingerprint: String,
    counts: Counts,
}

#[derive(Debug, Default)]
struct Counts {
    hits: AtomicU64,
    compiled: AtomicU64,
    rejected: AtomicU64,
    write_errors: AtomicU64,
}

/// What the artifact cache did since the engine was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ArtifactCounts {
    /// Loads served from a verified artifact.
    pub hits: u64,
    /// Components compiled (no artifact yet, or a rejected one), and stored.
    pub compiled: u64,
    /// Artifacts that failed their MAC or wasmtime's check: deleted, recompiled.
    pub rejected: u64,
    /// Artifacts that could not be written (the load still succeeded).
    pub write_errors: u64,
}

impl ArtifactCache {
    /// Opens (creating it `0700` if needed) the cache directory for `engine`.
    pub fn open(dir: &Path, engine: &wasmtime::Engine) -> Result<ArtifactCache, EngineError> {
        let fail = |detail: String| EngineError::Artifacts {
            dir: dir.display().to_string(),
            detail,
        };
        create_private_dir(dir).map_err(|e| fail(format!("cannot create: {e}")))?;
        let key = read_or_create_key(&dir.join(KEY_FILE)).map_err(fail)?;
        check_private(dir).map_err(fail)?;
        let mut hasher = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        let fingerprint = hex::encode(&hasher.0.finalize()[..8]);
        Ok(ArtifactCache {
            dir: dir.to_owned(),
            key,
            fingerprint,
            counts: Counts::default(),
        })
    }

    pub fn counts(&self) -> ArtifactCounts {
        let c = &self.counts;
        ArtifactCounts {
            hits: c.hits.load(Ordering::Relaxed),
            compiled: c.compiled.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            write_errors: c.write_errors.load(Ordering::Relaxed),
        }
    }

    /// The path the artifact of the component with this sha256 has.
    pub fn path_of(&self, sha256: &[u8; 32]) -> PathBuf {
        self.dir.join(self.name_of(sha256))
    }

    fn name_of(&self, sha256: &[u8; 32]) -> String {
        format!("{}-{}.cwasm", hex::encode(sha256), self.fingerprint)
    }

    /// The component from its verified artifact, or compiled (and stored) when there is none.
    pub fn load_or_compile(
        &self,
        engine: &wasmtime::Engine,
        file: &str,
        sha256: &[u8; 32],
        bytes: &[u8],
    ) -> Result<Component, LoadError> {
        let name = self.name_of(sha256);
        let path = self.dir.join(&name);
        if let Some(component) = self.load(engine, &name, &path) {
            self.counts.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(component);
        }
        let component = compile(engine, file, bytes)?;
        self.counts.compiled.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.store(&name, &path, &component) {
            self.counts.write_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(file, artifact = %path.display(), error = %e, "cannot store the precompiled component");
        }
        Ok(component)
    }

    fn load(&self, engine: &wasmtime::Engine, name: &str, path: &Path) -> Option<Component> {
        let data = match fs::read(path) {
            Ok(data) => data,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(artifact = %path.display(), error = %e, "cannot read the precompiled component; compiling");
                return None;
            }
        };
        let verified = data
            .strip_prefix(MAGIC.as_slice())
            .and_then(|rest| rest.split_at_checked(KEY_LEN))
            .filter(|(mac, payload)| constant_time_eq(mac, &mac_of(&self.key, name, payload)))
            .map(|(_, payload)| payload);
        let Some(payload) = verified else {
            self.reject(path, "its MAC does not match: this host did not write it");
            return None;
        };
        // SAFETY: `payload` is exactly the serialized component this host wrote under this
        // name: the MAC under the directory's private key proves it (see the module docs),
        // and it is the in-memory buffer that was checked, not a file that could change.
        match unsafe { Component::deserialize(engine, payload) } {
            Ok(component) => Some(component),
            Err(e) => {
                self.reject(path, &format!("wasmtime refused it: {e:#}"));
                None
            }
        }
    }

    fn reject(&self, path: &Path, why: &str) {
        self.counts.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(artifact = %path.display(), why, "precompiled component rejected; deleting it and compiling");
        let _ = fs::remove_file(path);
    }

    fn store(&self, name: &str, path: &Path, component: &Component) -> std::io::Result<()> {
        let payload = component.serialize().map_err(std::io::Error::other)?;
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let tmp = self.dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut f = private_file(&tmp)?;
            f.write_all(MAGIC)?;
            f.write_all(&mac_of(&self.key, name, &payload))?;
            f.write_all(&payload)?;
            f.sync_data()?;
            fs::rename(&tmp, path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written
    }
}

/// Compiles `bytes`, naming `file` in the error.
pub(crate) fn compile(
    engine: &wasmtime::Engine,
    file: &str,
    bytes: &[u8],
) -> Result<Component, LoadError> {
    Component::new(engine, bytes).map_err(|e| LoadError::Compile {
        file: file.to_owned(),
        detail: format!("{e:#}"),
    })
}

/// Feeds `Hash` output into sha256, so the fingerprint does not depend on std's hasher.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        0
    }
}

/// The artifact's MAC: HMAC-SHA256 under the directory's key of its name (length-prefixed)
/// and bytes.
fn mac_of(key: &[u8; KEY_LEN], name: &str, payload: &[u8]) -> [u8; 32] {
    let name_len = (name.len() as u64).to_le_bytes();
    hmac_sha256(key, &[&name_len, name.as_bytes(), payload])
}

/// HMAC-SHA256 (RFC 2104) of the concatenated `parts`.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new().chain_update(block.map(|b| b ^ 0x36));
    for part in parts {
        inner.update(part);
    }
    Sha256::new()
        .chain_update(block.map(|b| b ^ 0x5c))
        .chain_update(inner.finalize())
        .finalize()
        .into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// The directory must belong to the user the key file belongs to (this process wrote it or
/// read it as its own) and be closed to group and others.
#[cfg(unix)]
fn check_private(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let d = fs::metadata(dir).map_err(|e| format!("cannot stat: {e}"))?;
    let k = fs::metadata(dir.join(KEY_FILE)).map_err(|e| format!("cannot stat key: {e}"))?;
    if !d.is_dir() {
        return Err("not a directory".into());
    }
    if d.uid() != k.uid() {
        return Err(format!("owned by uid {}, not by this user", d.uid()));
    }
    for (what, mode) in [("directory", d.mode()), ("key file", k.mode())] {
        if mode & 0o077 != 0 {
            return Err(format!(
                "the {what} is open to other users (mode {:o}); make it owner-only (chmod go-rwx) or use another directory",
                mode & 0o777
            ));
        }
    }
    Ok(())
}

#[cfg(unix)]
fn read_or_create_key(path: &Path) -> Result<[u8; KEY_LEN], String> {
    match fs::read(path) {
        Ok(bytes) => bytes.try_into().map_err(|b: Vec<u8>| {
            format!(
                "{}: a key is {KEY_LEN} bytes, this file has {}",
                path.display(),
                b.len()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; KEY_LEN];
            fs::File::open("/dev/urandom")
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut key))
                .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
            match private_file(path) {
                Ok(mut f) => f
                    .write_all(&key)
                    .and_then(|()| f.sync_all())
                    .map(|()| key)
                    .map_err(|e| format!("cannot write {}: {e}", path.display())),
                // Another process created it meanwhile: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_or_create_key(path),
                Err(e) => Err(format!("cannot create {}: {e}", path.display())),
            }
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(not(unix))]
fn create_private_dir(_: &Path) -> std::io::Result<()> {
    Err(std::io::Error::other(
        "the artifact cache needs owner-only directories (Unix)",
    ))
}
#[cfg(not(unix))]
fn private_file(_: &Path) -> std::io::Result<fs::File> {
    Err(std::io::Error::other("unsupported"))
}
#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<(), String> {
    Err("unsupported".into())
}
#[cfg(not(unix))]
fn read_or_create_key(_: &Path) -> Result<[u8; KEY_LEN], String> {
    Err("unsupported".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test cases 1 and 2 of RFC 4231.
        let one = hmac_sha256(&[0x0b; 20], &[b"Hi ", b"There"]);
        assert_eq!(
            hex::encode(one),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        let two = hmac_sha256(b"Jefe", &[b"what do ya want for nothing?"]);
        assert_eq!(
            hex::encode(two),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn mac_binds_name_and_bytes() {
        let key = [7u8; KEY_LEN];
        let a = mac_of(&key, "a.cwasm", b"code");
        assert_eq!(a, mac_of(&key, "a.cwasm", b"code"));
        assert_ne!(a, mac_of(&key, "b.cwasm", b"code"), "renaming breaks it");
        assert_ne!(
            a,
            mac_of(&key, "a.cwasm", b"codf"),
            "a flipped byte breaks it"
        );
        assert_ne!(
            a,
            mac_of(&[8u8; KEY_LEN], "a.cwasm", b"code"),
            "another key"
        );
        assert!(constant_time_eq(&a, &a) && !constant_time_eq(&a, &a[..31]));
    }
}
