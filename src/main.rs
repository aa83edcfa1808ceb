fn main() {
    println!("boxoffice");
}
