// `#[renamed_from(..)]` names the table's earlier name; without one it says so.
cairn::schema! {
    Shop {
        #[renamed_from()]
        accounts: <u32, String>,
    }
}

fn main() {}
