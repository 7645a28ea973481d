//! The UDF registry: modules stored content-addressed under the data
//! directory (`<dir>/udf/<sha256>.wasm`) with an index of names
//! (`<dir>/udf/index.json`), loaded again at start-up. This is the library
//! API the CLI (`eddy udf ...`) and the web UI call.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::udf::{UdfError, UdfLimits, UdfModule, UdfSignature};

/// One registered module, as the index records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    name: String,
    sha256: String,
    size: usize,
}

/// Registered modules of one data directory.
#[derive(Debug)]
pub struct Registry {
    dir: PathBuf,
    limits: UdfLimits,
    modules: Vec<Arc<UdfModule>>,
    /// Index entries that could not be loaded, with why: set aside (queries
    /// that do not call them run) until they are removed or registered again.
    quarantined: Vec<(Entry, String)>,
}

/// Whether `s` is a sha256 as the index stores it (64 lower-case hex
/// digits): it becomes a file name, so nothing else may pass.
fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether `name` is a valid module name.
fn is_module_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// An exclusive lock on the registry's directory, held while the index is
/// read, changed and written: concurrent `eddy udf register` runs (or a
/// server and the CLI) never lose each other's registrations.
struct Locked(std::fs::File);

impl Drop for Locked {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl Registry {
    /// The default data directory: `$XDG_DATA_HOME/eddy`, else
    /// `~/.local/share/eddy`, else `./.eddy`.
    pub fn default_dir() -> PathBuf {
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
            return PathBuf::from(x).join("eddy");
        }
        match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            Some(home) => PathBuf::from(home).join(".local/share/eddy"),
            None => PathBuf::from(".eddy"),
        }
    }

    /// Opens the registry of `dir` (created when first written) and loads
    /// every registered module. An entry that does not load (a missing,
    /// altered or broken module file, an invalid name or sha256) is set
    /// aside with a warning ([`Registry::warnings`]) instead of failing
    /// everything; `remove` takes it out. A corrupt index is moved aside.
    ///
    /// # Errors
    /// The index cannot be read or moved aside (permissions, I/O).
    pub fn open(dir: &Path, limits: UdfLimits) -> Result<Self, UdfError> {
        let mut r = Registry {
            dir: dir.to_path_buf(),
            limits,
            modules: Vec::new(),
            quarantined: Vec::new(),
        };
        r.reload()?;
        Ok(r)
    }

    /// Reads the index again and loads what it lists (modules already
    /// loaded are kept as they are).
    fn reload(&mut self) -> Result<(), UdfError> {
        let entries = self.read_index()?;
        let mut modules = Vec::new();
        let mut quarantined = Vec::new();
        for e in entries {
            if let Some(m) = self
                .modules
                .iter()
                .find(|m| m.name == e.name && m.sha256 == e.sha256)
            {
                modules.push(m.clone());
                continue;
            }
            match self.load_entry(&e) {
                Ok(m) => modules.push(m),
                Err(why) => quarantined.push((e, why)),
            }
        }
        self.modules = modules;
        self.quarantined = quarantined;
        Ok(())
    }

    /// Loads one index entry, or says why it cannot be.
    fn load_entry(&self, e: &Entry) -> Result<Arc<UdfModule>, String> {
        if !is_module_name(&e.name) {
            return Err(format!("'{}' is not a valid module name", e.name));
        }
        if !is_sha256(&e.sha256) {
            return Err(format!("its sha256 '{}' is not a sha256", e.sha256));
        }
        let file = self.file(&e.sha256);
        let bytes = std::fs::read(&file).map_err(|err| format!("{}: {err}", file.display()))?;
        let module =
            UdfModule::load(&e.name, &bytes, self.limits).map_err(|err| err.to_string())?;
        if module.sha256 != e.sha256 {
            return Err(format!(
                "{} was altered (its sha256 no longer matches)",
                file.display()
            ));
        }
        Ok(module)
    }

    /// Why entries were set aside at the last load: one line each, for
    /// printing as warnings.
    pub fn warnings(&self) -> Vec<String> {
        self.quarantined
            .iter()
            .map(|(e, why)| {
                format!(
                    "UDF module '{}' is set aside and cannot be called: {why} (eddy udf remove {} takes it out; register it again to fix it)",
                    e.name, e.name
                )
            })
            .collect()
    }

    /// Takes the registry's lock (creating its directory) and reads the
    /// index again, for a change.
    fn lock(&mut self) -> Result<Locked, UdfError> {
        let dir = self.dir.join("udf");
        std::fs::create_dir_all(&dir).map_err(|e| self.error(&dir, e))?;
        let path = dir.join(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| self.error(&path, e))?;
        file.lock().map_err(|e| self.error(&path, e))?;
        let locked = Locked(file);
        self.reload()?;
        Ok(locked)
    }

    /// The registered modules, in registration order.
    pub fn modules(&self) -> &[Arc<UdfModule>] {
        &self.modules
    }

    /// The module defining SQL function `name`, and its signature.
    pub fn function(&self, name: &str) -> Option<(Arc<UdfModule>, UdfSignature)> {
        self.modules
            .iter()
            .find_map(|m| m.function(name).map(|f| (m.clone(), f.clone())))
    }

    /// Registers the module in `path` under `name` (default: the file name
    /// without `.wasm`), storing a copy by its sha256.
    ///
    /// # Errors
    /// The module is invalid, too large, lacks the ABI marker or speaks
    /// another version; the name or one of its functions is taken (by
    /// another module or a built-in function); the file cannot be read or
    /// the registry written.
    pub fn register(
        &mut self,
        path: &Path,
        name: Option<&str>,
    ) -> Result<Arc<UdfModule>, UdfError> {
        let name = match name {
            Some(n) => n.to_string(),
            None => path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        let bytes = std::fs::read(path).map_err(|e| self.error(path, e))?;
        self.register_bytes(&bytes, &name, &path.display().to_string())
    }

    /// Registers a module given as bytes (an upload) under `name`;
    /// `origin` names where it came from in messages. Checked exactly as
    /// [`Registry::register`] checks a file.
    ///
    /// # Errors
    /// As [`Registry::register`].
    pub fn register_bytes(
        &mut self,
        bytes: &[u8],
        name: &str,
        origin: &str,
    ) -> Result<Arc<UdfModule>, UdfError> {
        let name = name.to_string();
        if !is_module_name(&name) {
            return Err(UdfError::Registry {
                path: origin.to_string(),
                reason: format!(
                    "'{name}' is not a valid module name (letters, digits, _ and -); pass --name"
                ),
            });
        }
        if bytes.len() > self.limits.module_bytes {
            return Err(UdfError::TooLarge {
                name,
                size: bytes.len(),
                limit: self.limits.module_bytes,
            });
        }
        let module = UdfModule::load(&name, bytes, self.limits)?;
        let _locked = self.lock()?;
        if self.modules.iter().any(|m| m.name == name) {
            return Err(self.clash(format!(
                "a module named '{name}' is already registered; remove it first (eddy udf remove {name}) or pass another --name"
            )));
        }
        for f in &module.functions {
            if crate::sql::functions::is_reserved_function_name(&f.name) {
                return Err(self.clash(format!(
                    "function {} has the name of a built-in function; rename it",
                    f.name
                )));
            }
            if let Some(other) = self.modules.iter().find(|m| m.function(&f.name).is_some()) {
                return Err(self.clash(format!(
                    "function {} is already defined by module '{}'",
                    f.name, other.name
                )));
            }
        }
        let dir = self.dir.join("udf");
        std::fs::create_dir_all(&dir).map_err(|e| self.error(&dir, e))?;
        let file = self.file(&module.sha256);
        std::fs::write(&file, bytes).map_err(|e| self.error(&file, e))?;
        self.modules.push(module.clone());
        // registering a name again replaces an entry set aside under it
        self.quarantined.retain(|(e, _)| e.name != name);
        self.write_index()?;
        Ok(module)
    }

    /// Removes the module `name` (its file too, unless another entry uses it).
    ///
    /// # Errors
    /// No such module, or the registry cannot be written.
    pub fn remove(&mut self, name: &str) -> Result<Option<Arc<UdfModule>>, UdfError> {
        let _locked = self.lock()?;
        if let Some(at) = self.quarantined.iter().position(|(e, _)| e.name == name) {
            // an entry set aside: out of the index; its file too when valid and unused
            let (e, _) = self.quarantined.remove(at);
            self.write_index()?;
            if is_sha256(&e.sha256) && !self.modules.iter().any(|m| m.sha256 == e.sha256) {
                let _ = std::fs::remove_file(self.file(&e.sha256));
            }
            return Ok(None);
        }
        let Some(pos) = self.modules.iter().position(|m| m.name == name) else {
            let names: Vec<&str> = self.modules.iter().map(|m| m.name.as_str()).collect();
            return Err(UdfError::Registry {
                path: self.dir.display().to_string(),
                reason: format!(
                    "no module named '{name}'; registered: {}",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            });
        };
        let module = self.modules.remove(pos);
        self.write_index()?;
        if !self.modules.iter().any(|m| m.sha256 == module.sha256) {
            let file = self.file(&module.sha256);
            std::fs::remove_file(&file).map_err(|e| self.error(&file, e))?;
        }
        Ok(Some(module))
    }

    fn file(&self, sha256: &str) -> PathBuf {
        self.dir.join("udf").join(format!("{sha256}.wasm"))
    }

    fn index(&self) -> PathBuf {
        self.dir.join("udf").join("index.json")
    }

    fn read_index(&self) -> Result<Vec<Entry>, UdfError> {
        let path = self.index();
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(entries) => Ok(entries),
                Err(e) => {
                    // set it aside, so the registry (and every query) works again
                    let aside = path.with_extension(format!(
                        "json.corrupt-{}",
                        chrono::Utc::now().timestamp_millis()
                    ));
                    std::fs::rename(&path, &aside).map_err(|err| self.error(&path, err))?;
                    eprintln!(
                        "warning: the UDF index {} is not valid JSON ({e}); moved to {} and starting with no modules (register them again)",
                        path.display(),
                        aside.display()
                    );
                    Ok(Vec::new())
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(self.error(&path, e)),
        }
    }

    fn write_index(&self) -> Result<(), UdfError> {
        // entries set aside stay listed until removed (or registered again)
        let entries: Vec<Entry> = self
            .modules
            .iter()
            .map(|m| Entry {
                name: m.name.clone(),
                sha256: m.sha256.clone(),
                size: m.size,
            })
            .chain(self.quarantined.iter().map(|(e, _)| e.clone()))
            .collect();
        let path = self.index();
        let text = serde_json::to_string_pretty(&entries).map_err(|e| UdfError::Registry {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        // write then rename, so a crash never leaves half an index
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(|e| self.error(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| self.error(&path, e))
    }

    fn error(&self, path: &Path, e: std::io::Error) -> UdfError {
        UdfError::Registry {
            path: path.display().to_string(),
            reason: e.to_string(),
        }
    }

    fn clash(&self, reason: String) -> UdfError {
        UdfError::Registry {
            path: self.dir.display().to_string(),
            reason,
        }
    }
}
