//! A bump allocator for rule components (wasm only, feature `arena`, on by default).
//!
//! The host runs every batch in a fresh instance and throws it away afterwards, so memory
//! never needs to be reused across batches. Inside a batch, allocations are mostly short
//! strings and vectors; bumping a pointer is far cheaper than wasi-libc's dlmalloc compiled to
//! wasm, and every string the host hands in goes through this allocator too (`cabi_realloc`).
//!
//! - Allocations come from a fixed region in `.bss` (untouched pages cost nothing).
//! - Freeing or growing the most recent allocation is done in place (Vec/String growth, LIFO
//!   temporaries); other frees are no-ops until the instance is dropped.
//! - When the region is exhausted, allocations fall back to the system allocator, so a rule
//!   that allocates more than the region still works (at the old speed).
//!
//! Turn it off with `default-features = false` if a rule churns through much more memory than
//! it keeps live in one batch.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, UnsafeCell};

#[cfg(target_feature = "atomics")]
compile_error!("the arena allocator assumes a single-threaded wasm target");

/// Size of the bump region: enough for a batch of hundreds of events and their decisions.
const ARENA_BYTES: usize = 2 << 20;

#[repr(C, align(16))]
struct Region(UnsafeCell<[u8; ARENA_BYTES]>);

pub struct Arena {
    region: Region,
    /// Offset of the first free byte in `region`.
    next: Cell<usize>,
}

// SAFETY: wasm32-wasip2 without the `atomics` feature (checked above) has one thread, so the
// cells are never accessed concurrently.
unsafe impl Sync for Arena {}

impl Arena {
    const fn new() -> Arena {
        Arena {
            region: Region(UnsafeCell::new([0; ARENA_BYTES])),
            next: Cell::new(0),
        }
    }

    fn base(&self) -> usize {
        self.region.0.get() as usize
    }

    fn contains(&self, ptr: *mut u8) -> bool {
        let p = ptr as usize;
        p >= self.base() && p < self.base() + ARENA_BYTES
    }

    /// Offset range `[start, start + size)` for `layout`, if it fits.
    /// The alignment is a power of two, so rounding up is a mask (not a division: every
    /// allocation of a batch comes through here).
    #[inline]
    fn reserve(&self, layout: Layout) -> Option<usize> {
        let base = self.base();
        let mask = layout.align() - 1;
        let addr = (base + self.next.get()).checked_add(mask)? & !mask;
        let end = addr.checked_add(layout.size())?;
        (end <= base + ARENA_BYTES).then(|| {
            self.next.set(end - base);
            addr
        })
    }
}

unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.reserve(layout) {
            Some(addr) => addr as *mut u8,
            // SAFETY: forwarded with the caller's layout.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.contains(ptr) {
            // Only the most recent allocation can be given back.
            if ptr as usize + layout.size() == self.base() + self.next.get() {
                self.next.set(ptr as usize - self.base());
            }
        } else {
            // SAFETY: `ptr` came from `System.alloc` with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if self.contains(ptr) {
            let start = ptr as usize - self.base();
            let is_last = start + layout.size() == self.next.get();
            if is_last && start + new_size <= ARENA_BYTES {
                self.next.set(start + new_size);
                return ptr;
            }
            if new_size <= layout.size() {
                return ptr;
            }
            // SAFETY: `layout.align()` is valid and `new_size` is non-zero (larger than the
            // old size); the copy covers only the old allocation.
            unsafe {
                let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
                let new = self.alloc(new_layout);
                if !new.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, new, layout.size());
                }
                new
            }
        } else {
            // SAFETY: `ptr` came from `System.alloc` with this layout.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }
}

#[global_allocator]
static ARENA: Arena = Arena::new();
