// A table renamed from `people` owns the data under that name; a new table may not take the old name.
cairn::schema! {
    Shop {
        #[renamed_from(people)]
        persons: <u32, String>,
        people: <u32, u64>,
    }
}

fn main() {}
