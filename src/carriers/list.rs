//! The carriers, in one list. Whatever needs every carrier is made from it: the `Carrier` type, the config's
//! `[carriers.*]` sections, the carrier listener's webhooks, the simulator's calls. It sits below
//! everything (it imports nothing), so the configuration can be made from it too.

/// Each `Variant => folder` is a folder of `carriers` (docs/carriers.md, "Adding a carrier"). Adding a
/// carrier is its folder and its line here. `carriers_list!(a_macro)` calls `a_macro!` with the list.
macro_rules! carriers_list {
    ($then:ident) => {
        $then! {
            Mcube => mcube,
            Plivo => plivo,
            Exotel => exotel,
            Twilio => twilio,
        }
    };
}
pub(crate) use carriers_list;

macro_rules! names {
    ($($variant:ident => $folder:ident),+ $(,)?) => {
        /// Every carrier's name, as it appears in paths, config sections, routes and records.
        pub const NAMES: [&str; [$(stringify!($folder)),+].len()] = [$(stringify!($folder)),+];
    };
}
carriers_list!(names);

/// Every carrier's name, as a sentence says them: `mcube, plivo, exotel or twilio`.
pub fn spoken() -> String {
    match NAMES.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}
