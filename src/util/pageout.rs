//! Giving the boot path's code back to the kernel once the instance is in service.
//!
//! In service the agent only sleeps and reads IMDS every few seconds, yet its resident memory was
//! mostly its own binary (8.2 of 9.5 MiB, bench/results/README.md): the boot path touches code all
//! over `.text` (the SDK clients, TLS, TOML, Docker) and the kernel maps 64 KiB around every page
//! fault. Those pages are clean and file-backed, so `MADV_PAGEOUT` on the binary's read-only
//! mappings hands them back: the kernel drops them (nothing else maps the agent's binary) and the
//! watch loop faults back in only the little it runs. When work comes (a drain, a reload) the
//! binary is read back in one pass. The cost, named in the README: that read (the binary's size,
//! sequential, from the instance's root volume) at the start of a drain. Kernels before 5.4 have
//! no `MADV_PAGEOUT`; there the agent stays as it was.

use nix::sys::mman::{MmapAdvise, madvise};
use std::ffi::c_void;
use std::ptr::NonNull;

/// Larger read-only mappings than this are a debug build's (about 230 MiB, where a release agent
/// has 7 and the tests' `sim` build 21): reading one back at every drain would cost more than its
/// idle pages, so such a binary is left as it is.
const MAX_CODE_BYTES: usize = 32 << 20;

/// `/proc/self/maps` of a process is a few KiB; more than this is not ours to parse.
const MAPS_CAP: u64 = 1 << 20;

/// The read-only mappings of `exe` in a `/proc/<pid>/maps` listing: `(start, length)`. Writable
/// ones are left alone: their written pages are anonymous copies, not the file's.
pub fn read_only_mappings(maps: &str, exe: &str) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_ascii_whitespace();
            let range = fields.next()?;
            let perms = fields.next()?;
            // offset, device, inode, then the path (which may contain spaces). Only the path can
            // contain '/' or '[', so its first word is found at its own position.
            let path = fields.nth(3).map(|first| {
                let at = line.find(first).unwrap_or(line.len());
                &line[at..]
            })?;
            if path != exe || perms.contains('w') {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            let start = usize::from_str_radix(start, 16).ok()?;
            let end = usize::from_str_radix(end, 16).ok()?;
            (end > start).then_some((start, end - start))
        })
        .collect()
}

/// Advises the kernel to reclaim the agent binary's resident pages, and to read them back one
/// by one when touched (`MADV_RANDOM`: no readahead, so the watch loop's faults bring back only
/// what it runs, not 128 KiB around each). Returns the bytes advised (0 when nothing could be:
/// no `/proc`, an old kernel). Never fails the caller.
pub fn release_own_code() -> usize {
    advise_own_code(
        &[MmapAdvise::MADV_RANDOM, MmapAdvise::MADV_PAGEOUT],
        MAX_CODE_BYTES,
    )
}

/// Undoes `release_own_code` when the agent has work again (a drain, a reload): readahead back
/// on, and the whole binary read back in one sequential pass (`MADV_WILLNEED` starts it without
/// waiting) instead of page by page as the drain's code faults.
pub fn restore_own_code() -> usize {
    advise_own_code(
        &[MmapAdvise::MADV_NORMAL, MmapAdvise::MADV_WILLNEED],
        MAX_CODE_BYTES,
    )
}

/// `advice` in order on each read-only mapping of the running executable, unless together they
/// exceed `cap` bytes. Returns the bytes advised.
fn advise_own_code(advice: &[MmapAdvise], cap: usize) -> usize {
    let (Ok(exe), Ok(maps)) = (std::fs::read_link("/proc/self/exe"), read_maps()) else {
        return 0;
    };
    let Some(exe) = exe.to_str() else {
        return 0;
    };
    let mappings = read_only_mappings(&maps, exe);
    let total: usize = mappings.iter().map(|(_, len)| len).sum();
    if total > cap {
        return 0;
    }
    let mut advised = 0;
    for (start, len) in mappings {
        let Some(addr) = NonNull::new(start as *mut c_void) else {
            continue;
        };
        for &a in advice {
            // SAFETY: the range is one of this process's own file-backed, read-only mappings,
            // read from /proc/self/maps just now, and nothing unmaps the executable's image
            // while the process runs. These advices only change which clean pages stay
            // resident and how they are read back from the file: no memory's contents change.
            if let Err(e) = unsafe { madvise(addr, len, a) } {
                tracing::debug!(error = %e, advice = ?a, "madvise refused on the agent's code");
                return advised;
            }
        }
        advised += len;
    }
    advised
}

fn read_maps() -> std::io::Result<String> {
    use std::io::Read;
    let mut maps = String::new();
    std::fs::File::open("/proc/self/maps")?
        .take(MAPS_CAP)
        .read_to_string(&mut maps)?;
    Ok(maps)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
00400000-00c00000 r--p 00000000 fd:01 123 /usr/bin/ecs-boot
00c00000-01400000 r-xp 00800000 fd:01 123 /usr/bin/ecs-boot
01400000-01480000 rw-p 01000000 fd:01 123 /usr/bin/ecs-boot
01480000-01500000 rw-p 00000000 00:00 0 [heap]
7f0000000000-7f0000100000 r-xp 00000000 fd:01 456 /usr/lib64/libc.so.6
7f0000200000-7f0000201000 r--p 00000000 fd:01 789 /opt/with space/ecs-boot
";

    #[test]
    fn only_the_executables_read_only_mappings_are_chosen() {
        assert_eq!(
            read_only_mappings(MAPS, "/usr/bin/ecs-boot"),
            vec![(0x400000, 0x800000), (0xc00000, 0x800000)]
        );
        assert_eq!(
            read_only_mappings(MAPS, "/opt/with space/ecs-boot"),
            vec![(0x7f0000200000, 0x1000)]
        );
        assert!(read_only_mappings(MAPS, "/usr/bin/other").is_empty());
        assert!(read_only_mappings("garbage\n\nzz-yy r-xp 0 0 0 /x\n", "/x").is_empty());
    }

    #[test]
    fn the_running_test_binarys_code_can_be_released_restored_and_still_runs() {
        // The test binary is a debug build, over the cap: left alone.
        assert_eq!(release_own_code(), 0);
        assert_eq!(restore_own_code(), 0);
        // Without the cap, Linux 5.4+ answers with the bytes advised (an older kernel with 0).
        // Either way the code faults back in: the assertions after each call run it.
        let release = [MmapAdvise::MADV_RANDOM, MmapAdvise::MADV_PAGEOUT];
        let released = advise_own_code(&release, usize::MAX);
        assert!(released == 0 || released > MAX_CODE_BYTES, "{released}");
        assert_eq!(read_only_mappings(MAPS, "/usr/bin/ecs-boot").len(), 2);
        let restore = [MmapAdvise::MADV_NORMAL, MmapAdvise::MADV_WILLNEED];
        let restored = advise_own_code(&restore, usize::MAX);
        assert!(
            restored == 0 || restored == released,
            "{restored} vs {released}"
        );
    }
}
