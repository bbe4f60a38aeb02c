//! Process hardening at start-up: no core dumps (a dump of a live server would hold
//! plaintext uploads, codes and session keys), optionally memory locked so nothing is
//! swapped to disk. See SECURITY.md, "Live server compromise".

use rustix::process::{DumpableBehavior, Resource, Rlimit};
use tracing::{info, warn};

/// What [`apply`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hardening {
    /// RLIMIT_CORE is 0 (soft and hard).
    pub core_limit_zero: bool,
    /// The process is not dumpable (no core, no ptrace by same-uid processes).
    pub not_dumpable: bool,
    /// Memory lock: `None` if not asked for, else whether mlockall worked.
    pub memory_locked: Option<bool>,
}

/// Turns core dumps off and, if `lock_memory`, locks all current and future memory.
/// Logs one line saying which protections are active.
pub fn apply(lock_memory: bool) -> Hardening {
    let core_limit_zero = rustix::process::setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )
    .is_ok();
    let not_dumpable =
        rustix::process::set_dumpable_behavior(DumpableBehavior::NotDumpable).is_ok();
    let memory_locked = lock_memory.then(|| {
        rustix::mm::mlockall(rustix::mm::MlockAllFlags::CURRENT | rustix::mm::MlockAllFlags::FUTURE)
            .is_ok()
    });
    let hardening = Hardening {
        core_limit_zero,
        not_dumpable,
        memory_locked,
    };
    let lock = match memory_locked {
        None => "off (lock_memory = false)",
        Some(true) => "on",
        Some(false) => "FAILED (raise LimitMEMLOCK or drop lock_memory)",
    };
    if core_limit_zero && not_dumpable && memory_locked != Some(false) {
        info!(
            core_dumps = "off",
            dumpable = "no",
            memory_lock = lock,
            "process hardening active"
        );
    } else {
        warn!(
            core_limit_zero,
            not_dumpable,
            memory_lock = lock,
            "process hardening incomplete"
        );
    }
    hardening
}
