//! The arguments of an AT result code (`+CMTI: "SM",3`, `+CUSD: 0,"text, more",15`) split
//! into fields. Pure: no I/O.

/// Splits the arguments of a result code on commas outside quotes, and removes the quotes.
pub fn split_fields(args: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in args.trim().chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                fields.push(current.trim().to_string());
                current.clear();
            }
            _ => current.push(c),
        }
    }
    fields.push(current.trim().to_string());
    fields
}
