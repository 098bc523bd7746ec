cairn::schema! {
    Broken {
        accounts: <u32, String>,
        accounts: ordered<u32, String>,
    }
}

fn main() {}
