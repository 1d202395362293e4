//! Unit tests of the image files: times, chain ids, and a real store for tagging,
//! resolving, removing, fsck and gc.

mod unit {
    use super::super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert!(
            rfc3339(u64::MAX).starts_with("9999-"),
            "{}",
            rfc3339(u64::MAX)
        );
        assert!(now_rfc3339().ends_with('Z') && !now_rfc3339().contains('.'));
    }

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        assert_eq!(c[1], Digest::of(format!("{a} {b}").as_bytes()));
    }
}

mod store_tests {
    use super::super::*;
    use crate::store::Store;

    fn store() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path().join("s")).unwrap();
        (d, s)
    }

    /// An image with one fake layer; `salt` makes configs differ.
    fn image(s: &Store, salt: &str) -> (Digest, Digest) {
        let layer = s
            .put_blob_bytes(format!("layer {salt}").as_bytes())
            .unwrap();
        let diff = Digest::of(salt.as_bytes());
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
            "config": {"Env": [format!("SALT={salt}")]},
            "rootfs": {"type": "layers", "diff_ids": [diff]},
        });
        let bytes = serde_json::to_vec(&config).unwrap();
        let m = s
            .put_image_raw(
                &bytes,
                &[BlobRef {
                    media_type: OCI_LAYER_GZIP.into(),
                    digest: layer.digest,
                    size: layer.size,
                }],
            )
            .unwrap();
        (m, Digest::of(&bytes))
    }

    #[test]
    fn tag_resolve_by_every_handle() {
        let (_d, s) = store();
        let (m, id) = image(&s, "a");
        s.tag("busybox", &m).unwrap();
        s.tag("localhost:5000/x:1", &m).unwrap();
        for input in [
            "busybox".to_owned(),
            "busybox:latest".into(),
            "docker.io/library/busybox:latest".into(),
            "localhost:5000/x:1".into(),
            id.to_string(),
            id.hex().into(),
            id.hex()[..5].into(),
            m.to_string(),
            format!("busybox@{m}"),
        ] {
            assert_eq!(s.resolve(&input).unwrap().id(), &id, "{input}");
        }
        assert!(matches!(
            s.resolve("nope"),
            Err(StoreError::ImageNotFound { .. })
        ));
        assert!(matches!(
            s.resolve("busybox:2"),
            Err(StoreError::ImageNotFound { .. })
        ));
        let idx = s.read_index().unwrap();
        let names: Vec<_> = idx.manifests.iter().filter_map(|e| e.ref_name()).collect();
        assert_eq!(names, ["busybox", "localhost:5000/x:1"]);
    }

    #[test]
    fn a_name_moves_and_the_old_image_stays_unnamed() {
        let (_d, s) = store();
        let (m1, id1) = image(&s, "one");
        let (m2, _) = image(&s, "two");
        s.tag("app", &m1).unwrap();
        s.tag("app", &m2).unwrap();
        let imgs = s.list_images().unwrap();
        assert_eq!(imgs.len(), 2);
        let old = imgs.iter().find(|i| i.id() == &id1).unwrap();
        assert!(old.names.is_empty());
        assert_eq!(s.resolve("app").unwrap().manifest_digest, m2);
    }

    #[test]
    fn ambiguous_prefix_lists_candidates() {
        let (_d, s) = store();
        let (_, first) = image(&s, "0");
        let mut n = 1;
        loop {
            let (_, id) = image(&s, &n.to_string());
            if id.hex()[..1] == first.hex()[..1] {
                break;
            }
            n += 1;
        }
        let e = s.resolve(&first.hex()[..1]).unwrap_err();
        assert!(
            matches!(e, StoreError::Ambiguous { ref candidates, .. } if candidates.len() >= 2),
            "{e:?}"
        );
    }

    #[test]
    fn remove_like_docker_rmi() {
        let (_d, s) = store();
        let (m, id) = image(&s, "x");
        s.tag("a", &m).unwrap();
        s.tag("b", &m).unwrap();
        assert!(matches!(
            s.remove_image(id.hex(), false),
            Err(StoreError::ImageHasNames { .. })
        ));
        let r = s.remove_image("a", false).unwrap();
        assert_eq!((r.untagged, r.deleted.len()), (vec!["a".to_owned()], 0));
        let r = s.remove_image("b", false).unwrap();
        assert_eq!(r.deleted, vec![id]);
        assert!(s.list_images().unwrap().is_empty());
        // gc now takes all three blobs; fsck stays clean.
        let g = s.gc(&crate::GcOptions::default()).unwrap();
        assert_eq!(g.blobs_removed.len(), 3);
        assert!(s.fsck().unwrap().is_clean());
    }

    #[test]
    fn fsck_reports_corruption_and_missing_blobs() {
        let (_d, s) = store();
        let (m, _) = image(&s, "f");
        s.tag("f", &m).unwrap();
        assert!(s.fsck().unwrap().is_clean());
        let img = s.resolve("f").unwrap();
        let layer = &img.layers().unwrap()[0];
        std::fs::write(s.blob_path(&layer.digest), b"tampered").unwrap();
        let r = s.fsck().unwrap();
        assert!(
            r.problems
                .iter()
                .any(|p| p.object.contains(&layer.digest.to_string())),
            "{r:?}"
        );
        std::fs::remove_file(s.blob_path(&layer.digest)).unwrap();
        let r = s.fsck().unwrap();
        assert!(
            r.problems.iter().any(|p| p.what.contains("missing")),
            "{r:?}"
        );
    }

    #[test]
    fn put_manifest_requires_its_blobs() {
        let (_d, s) = store();
        let missing = Digest::of(b"absent");
        let m = serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": missing, "size": 1}, "layers": [],
        });
        let e = s
            .put_manifest(&serde_json::to_vec(&m).unwrap(), OCI_MANIFEST)
            .unwrap_err();
        assert!(matches!(e, StoreError::BlobMissing { .. }));
        assert!(s.read_index().unwrap().manifests.is_empty());
    }

    #[test]
    fn gc_removes_debris_of_dead_processes_only() {
        let (_d, s) = store();
        let tmp = s.layout().tmp();
        // pid 0x7fffffff does not exist; our own pid does.
        let host = crate::atomic::host_tag();
        std::fs::create_dir_all(tmp.join(format!("2147483647.{host}-1-0-layer/diff/d"))).unwrap();
        std::fs::write(
            tmp.join(format!("{}.{host}-1-0-blob", std::process::id())),
            b"mine",
        )
        .unwrap();
        // Another host's entry (a shared store): young, so kept.
        std::fs::write(tmp.join("2147483647.00000000-1-0-blob"), b"theirs").unwrap();
        // Not ours at all: removed.
        std::fs::write(tmp.join("junk"), b"?").unwrap();
        let g = s.gc(&crate::GcOptions::default()).unwrap();
        assert_eq!(g.temp_removed, 2);
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 2);
    }
}
