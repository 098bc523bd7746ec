cairn::schema! {
    Broken {
        accounts: <String>,
    }
}

fn main() {}
