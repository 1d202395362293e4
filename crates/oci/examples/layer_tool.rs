//! A small driver for measuring the layer code against GNU tar and umoci (not a test):
//!
//! ```text
//! layer_tool pack DIR OUT [--gzip|--zstd] [--xattr]
//! layer_tool unpack IN DIR [--walk] [--xattr]      (IN may be compressed)
//! layer_tool flatten OUT DIR...                     (lowest first)
//! ```

#![allow(clippy::print_stderr, clippy::unwrap_used)]

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;

use imago_oci::layer::{self, OwnerMode, PackOptions, Resolver, UnpackOptions};
use imago_oci::{compress, Compression, Compressor, Level};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    let owner = if flag("--xattr") {
        OwnerMode::Xattr
    } else {
        OwnerMode::Real
    };
    let pos: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    match pos.first().map(|s| s.as_str()) {
        Some("pack") => {
            let c = if flag("--gzip") {
                Compression::Gzip
            } else if flag("--zstd") {
                Compression::Zstd
            } else {
                Compression::None
            };
            let out = Compressor::new(BufWriter::new(File::create(pos[2])?), c, Level::Fast)?;
            let mut out = out;
            let opts = PackOptions {
                owner,
                default_owner: Some((0, 0)),
                ..Default::default()
            };
            let stats = layer::pack(Path::new(pos[1]), &mut out, &opts)?;
            out.finish()?;
            eprintln!("{stats:?}");
        }
        Some("unpack") => {
            let (_, r) = compress::auto_decompress(BufReader::new(File::open(pos[1])?))?;
            let resolver = if flag("--walk") {
                Resolver::Walk
            } else {
                Resolver::Auto
            };
            let opts = UnpackOptions {
                owner,
                resolver,
                ..Default::default()
            };
            let stats = layer::unpack(r, Path::new(pos[2]), &opts)?;
            eprintln!("{stats:?}");
        }
        Some("flatten") => {
            let out = BufWriter::new(File::create(pos[1])?);
            let stats = layer::flatten(&pos[2..], out, &PackOptions::default())?;
            eprintln!("{stats:?}");
        }
        _ => return Err("usage: layer_tool pack|unpack|flatten …".into()),
    }
    Ok(())
}
