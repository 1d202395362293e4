//! `iimage squash IMG -o FILE.sqsh`: the image's flattened root (the same tar stream
//! `iimage export` writes, whiteouts applied, owners as the image has them) squashed
//! into one squashfs file with the image config embedded (imago_squash). The export
//! runs inside the user's id mapping, as export does; the tar never touches the disk.

use std::path::Path;

use imago_cli::{CarriedError, GlobalOpts};
use imago_squash::{SourceError, WriteOptions};

use crate::common::{in_mapping, open_store, Res};

pub fn squash(g: &GlobalOpts, image: &str, out: &Path) -> Res<()> {
    let store = open_store(g)?;
    let (_, img) = imago_cli::shortnames::find_stored(&store, image)?;
    let config = img.config_bytes.clone();
    let out = out.to_path_buf();
    let r = in_mapping(move |mode| {
        let produce = |w: &mut dyn std::io::Write| -> Result<(), SourceError> {
            store.export_rootfs(&img, mode, w)?;
            Ok(())
        };
        let written = imago_squash::write_from(produce, &config, &out, &WriteOptions::default());
        // The squash error travels as a value, like the store's (with its chain).
        Ok(written
            .map(|w| w.bytes)
            .map_err(|e| CarriedError::from_chain(&e)))
    })?;
    // Silent on success, as export and save are: the file is the output.
    r.map_err(Box::new)?;
    Ok(())
}
