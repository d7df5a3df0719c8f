//! Name validation on arbitrary text: an accepted name has only plain components and stays under
//! any root; printing any text through `sanitize` leaves no control character.
#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use qft::paths::{sanitize, SafeName};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    assert!(!sanitize(&text).chars().any(char::is_control));
    if let Ok(name) = SafeName::new(&text) {
        let root = Path::new("/srv/root");
        let joined = name.under(root);
        assert!(joined.starts_with(root));
        let extra: Vec<_> = joined.strip_prefix(root).unwrap().components().collect();
        assert!(!extra.is_empty());
        assert!(extra.iter().all(|c| matches!(c, Component::Normal(_))), "{text:?}");
        assert_eq!(extra.len(), name.components().count(), "{text:?}");
        assert!(!name.file_name().is_empty() && !name.file_name().contains('/'));
        assert!(!name.as_str().chars().any(|c| c.is_control() || c == '\\'));
    }
});
