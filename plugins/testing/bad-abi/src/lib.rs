//! Exports the entry point but announces ABI 999: the host must refuse it
//! after reading only the version, never calling anything in the table.
use idp_plugin_sdk::abi::{Buffer, HostTable, PluginTable};

unsafe extern "C" fn never(_input: *const u8, _len: usize) -> Buffer {
    Buffer::from_vec(Vec::new())
}
unsafe extern "C" fn never_init(_host: *const HostTable, _input: *const u8, _len: usize) -> Buffer {
    Buffer::from_vec(Vec::new())
}
unsafe extern "C" fn never_free(_buf: Buffer) {}

static TABLE: PluginTable = PluginTable {
    abi_version: 999,
    table_size: std::mem::size_of::<PluginTable>() as u32,
    manifest: never,
    init: never_init,
    claims: never,
    handle: never,
    free: never_free,
};

#[unsafe(no_mangle)]
pub extern "C" fn idp_plugin_v1() -> *const PluginTable {
    &TABLE
}
