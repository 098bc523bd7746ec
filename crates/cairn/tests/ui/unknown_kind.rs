cairn::schema! {
    Broken {
        accounts: sorted<u32, String>,
    }
}

fn main() {}
