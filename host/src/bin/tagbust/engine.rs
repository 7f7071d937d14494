//! The engine every command builds, with the precompiled-artifact cache on disk.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tagbust::{Engine, EngineOptions};

/// Where precompiled components are kept (global flags).
#[derive(Args, Clone, Default)]
pub struct CacheArgs {
    /// Directory for precompiled components (created owner-only), so the next load of the
    /// same component skips compiling. Default: $XDG_CACHE_HOME/tagbust, else
    /// ~/.cache/tagbust.
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every component afresh and write nothing to disk.
    #[arg(long, global = true, conflicts_with = "cache_dir")]
    no_cache: bool,
}

impl CacheArgs {
    /// The engine with default options and the artifact cache. A directory given with
    /// `--cache-dir` that cannot be used is an error; when the default one cannot be used the
    /// command warns and compiles without it.
    pub fn engine(&self) -> anyhow::Result<Engine> {
        if self.no_cache {
            return Ok(Engine::new(EngineOptions::default())?);
        }
        if let Some(dir) = &self.cache_dir {
            return Engine::new(with_dir(dir.clone())).context("--cache-dir");
        }
        let Some(dir) = default_dir() else {
            return Ok(Engine::new(EngineOptions::default())?);
        };
        match Engine::new(with_dir(dir)) {
            Ok(engine) => Ok(engine),
            Err(e) => {
                tracing::warn!(error = %e, "artifact cache unavailable; compiling every component");
                Ok(Engine::new(EngineOptions::default())?)
            }
        }
    }
}

fn with_dir(dir: PathBuf) -> EngineOptions {
    EngineOptions {
        artifact_dir: Some(dir),
        ..EngineOptions::default()
    }
}

/// `$XDG_CACHE_HOME/tagbust`, else `$HOME/.cache/tagbust` (absolute paths only, as the XDG
/// base directory specification says).
fn default_dir() -> Option<PathBuf> {
    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    absolute("XDG_CACHE_HOME")
        .or_else(|| absolute("HOME").map(|home| home.join(".cache")))
        .map(|base| base.join("tagbust"))
}
