//! This machine's platform in OCI's spelling (`linux`, `amd64`, `arm64`, `ppc64le`, …):
//! the workspace's one mapping from Rust's target names, for image configs, build args
//! (`TARGETARCH`) and picking a manifest from an index.
//!
//! Never: parses platform strings or chooses among index entries (callers do).

/// The OS imago runs on and builds for.
pub const HOST_OS: &str = "linux";

/// OCI's name for the architecture this program was compiled for. Names Rust and OCI
/// spell alike (`s390x`, `riscv64`, `arm`) pass through.
pub fn host_arch() -> &'static str {
    arch_for(std::env::consts::ARCH, cfg!(target_endian = "little"))
}

/// OCI's variant of the host architecture, where images tell variants apart: `v7` for
/// 32-bit arm; none elsewhere (arm64's `v8` is its default).
pub fn host_variant() -> Option<&'static str> {
    variant_for(std::env::consts::ARCH)
}

fn arch_for(rust_arch: &'static str, little_endian: bool) -> &'static str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if little_endian => "ppc64le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}

fn variant_for(rust_arch: &str) -> Option<&'static str> {
    (rust_arch == "arm").then_some("v7")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_names_map_to_oci_names() {
        let cases = [
            ("x86_64", "amd64"),
            ("aarch64", "arm64"),
            ("x86", "386"),
            ("arm", "arm"),
            ("s390x", "s390x"),
            ("riscv64", "riscv64"),
            ("loongarch64", "loong64"),
        ];
        for (rust, oci) in cases {
            assert_eq!(arch_for(rust, true), oci, "{rust}");
        }
        assert_eq!(arch_for("powerpc64", true), "ppc64le");
        assert_eq!(arch_for("powerpc64", false), "ppc64");
        assert_eq!(variant_for("arm"), Some("v7"));
        assert_eq!(variant_for("aarch64"), None);
        assert!(!host_arch().is_empty());
    }
}
