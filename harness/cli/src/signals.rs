//! Ctrl-C and SIGTERM, for every command that runs scenarios (`scenario`, `run`, `farm`).
//!
//! One handler per process, set up here only: the commands share its flag, the current steps
//! finish, reports and evidence are written, and the command exits 130.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// The flag Ctrl-C / SIGTERM set, installing the handler on first use.
pub fn interrupt_flag() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let set = flag.clone();
        // Fails only when a handler is already installed, which nothing else here does; the
        // run then goes on without one rather than refusing to start.
        if let Err(e) = ctrlc::set_handler(move || set.store(true, Ordering::SeqCst)) {
            eprintln!("warning: Ctrl-C will not stop the run cleanly: {e}");
        }
        flag
    })
    .clone()
}
