// Earlier names are written as identifiers, as table names are.
cairn::schema! {
    Shop {
        #[renamed_from("people")]
        accounts: <u32, String>,
    }
}

fn main() {}
