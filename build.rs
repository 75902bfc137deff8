//! Embeds what lands in the node image (the Dockerfile template, the rootfs tree and the
//! systemctl replacement's sources) into the kdind binary, so that a single binary can
//! build the image anywhere. Generates `$OUT_DIR/assets.rs`: a sorted list of
//! (context path, mode, bytes).

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let assets = root.join("assets");
    let mut files = Vec::new();
    collect(&assets.join("rootfs"), "rootfs", &mut files);
    collect(&assets.join("systemctl/src"), "systemctl/src", &mut files);
    files.push((
        "systemctl/Cargo.toml".to_owned(),
        assets.join("systemctl/Cargo.toml"),
    ));
    files.sort();
    let mut code = String::from("pub static EMBEDDED: &[Embedded] = &[\n");
    for (context_path, source) in &files {
        let executable = std::fs::metadata(source)
            .unwrap_or_else(|error| panic!("{}: {error}", source.display()))
            .permissions()
            .mode()
            & 0o111
            != 0;
        let mode = if executable { 0o755 } else { 0o644 };
        writeln!(
            code,
            "    Embedded {{ path: {context_path:?}, mode: {mode:#o}, bytes: include_bytes!({:?}) }},",
            source.display().to_string()
        )
        .expect("writing to a String");
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("assets.rs");
    std::fs::write(out, code).expect("write the generated asset list");
    for watched in [
        "rootfs",
        "systemctl/src",
        "systemctl/Cargo.toml",
        "Dockerfile",
    ] {
        println!("cargo:rerun-if-changed=assets/{watched}");
    }
}

fn collect(dir: &Path, prefix: &str, files: &mut Vec<(String, PathBuf)>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display()));
    for entry in entries {
        let entry = entry.expect("read an assets directory entry");
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let context_path = format!("{prefix}/{name}");
        if path.is_dir() {
            collect(&path, &context_path, files);
        } else {
            files.push((context_path, path));
        }
    }
}
