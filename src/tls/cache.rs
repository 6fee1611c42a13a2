//! What a `SecurityContext` keeps of the values built from it (the client
//! and server rustls configurations), without knowing their types: the
//! layers that build them own their keys and values, and the context only
//! gives them a place that lives and dies with it.

use std::any::Any;
use std::sync::{Arc, Mutex};

use crate::error::Result;
use crate::sync::lock;

/// How many values one context keeps (one per combination of options used
/// with it, client and server alike: 16 of each, as when they had a cache
/// each); the oldest goes first.
const CAPACITY: usize = 32;

type Entry = (Box<dyn Any + Send + Sync>, Arc<dyn Any + Send + Sync>);

/// Values built from one context, each under the key of what else it
/// depends on.
#[derive(Default)]
pub(crate) struct Derived {
    entries: Mutex<Vec<Entry>>,
}

impl Derived {
    /// The value kept under `key`, or the one `build` makes (kept for the
    /// next call). Keys of different types never match.
    pub(crate) fn get_or_build<K, V>(&self, key: K, build: impl FnOnce() -> Result<V>) -> Result<V>
    where
        K: PartialEq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let mut entries = lock(&self.entries);
        let found = entries.iter().find_map(|(k, v)| {
            (k.as_ref().downcast_ref::<K>() == Some(&key))
                .then(|| v.as_ref().downcast_ref::<V>().cloned())
        });
        if let Some(Some(v)) = found {
            return Ok(v);
        }
        let v = build()?;
        if entries.len() >= CAPACITY {
            entries.remove(0);
        }
        entries.push((Box::new(key), Arc::new(v.clone())));
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_value_per_key_and_type() {
        let d = Derived::default();
        let a = d.get_or_build(1u8, || Ok(Arc::new("a"))).expect("built");
        let b = d.get_or_build(1u8, || Ok(Arc::new("b"))).expect("kept");
        assert!(Arc::ptr_eq(&a, &b));
        let c = d
            .get_or_build(1u16, || Ok(Arc::new("c")))
            .expect("other type");
        assert_eq!(*c, "c");
        for i in 0..CAPACITY as u32 {
            d.get_or_build(i, || Ok(i)).expect("filled");
        }
        let again = d
            .get_or_build(1u8, || Ok(Arc::new("new")))
            .expect("evicted");
        assert_eq!(*again, "new", "the oldest entry went first");
    }
}
