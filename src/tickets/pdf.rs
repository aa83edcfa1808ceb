//! The tickets of an order as one PDF, a page per ticket: event, date and time, venue, holder,
//! order number, "Ticket 2 of 3", and the ticket code as a QR code with the code printed under
//! it. Written with `pdf-writer` and the standard Helvetica font (no font embedded), the QR
//! code drawn as filled squares from `qrcode`'s matrix.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};
use qrcode::{Color, QrCode};

use crate::db::events::Listing;
use crate::db::orders::Order;
use crate::db::tickets::Ticket;

/// A4 in points.
const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 56.0;
/// The QR code's side, quiet zone included. A door scanner reads it from a phone screen.
const QR_SIDE: f32 = 220.0;
/// The blank border a QR reader needs around the code, in modules.
const QUIET_MODULES: usize = 4;

/// The PDF of `tickets` (at least one), in the order given.
pub fn render(order: &Order, listing: &Listing, tickets: &[Ticket]) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let font = Ref::new(3);
    let bold = Ref::new(4);
    // Each page and its content stream take the next two ids.
    let page_ids: Vec<Ref> = (0..tickets.len()).map(|i| Ref::new(5 + 2 * i as i32)).collect();

    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_ids.iter().copied())
        .count(tickets.len() as i32);
    pdf.type1_font(font)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));

    for (ticket, page_id) in tickets.iter().zip(&page_ids) {
        let content_id = Ref::new(page_id.get() + 1);
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT));
        page.parent(tree);
        page.contents(content_id);
        let mut resources = page.resources();
        let mut fonts = resources.fonts();
        fonts.pair(Name(b"F1"), font);
        fonts.pair(Name(b"F2"), bold);
        fonts.finish();
        resources.finish();
        page.finish();
        pdf.stream(content_id, &ticket_page(order, listing, ticket));
    }
    pdf.finish()
}

fn ticket_page(order: &Order, listing: &Listing, ticket: &Ticket) -> Vec<u8> {
    let mut c = Content::new();
    let mut lines = Lines {
        y: PAGE_HEIGHT - MARGIN - 24.0,
    };
    lines.write(&mut c, b"F2", 24.0, &listing.title, 12.0);
    let when = listing.starts_at.format("%A %-d %B %Y, %H:%M UTC").to_string();
    lines.write(&mut c, b"F1", 14.0, &when, 6.0);
    if !listing.venue.is_empty() {
        lines.write(&mut c, b"F1", 14.0, &listing.venue, 6.0);
    }
    lines.y -= 12.0;
    let which = format!("Ticket {} of {}", ticket.number, ticket.of);
    lines.write(&mut c, b"F2", 18.0, &which, 8.0);
    lines.write(&mut c, b"F1", 12.0, &format!("Holder: {}", order.buyer_name), 4.0);
    lines.write(&mut c, b"F1", 12.0, &format!("Order: {}", order.number), 4.0);

    let top = lines.y - 24.0;
    qr(&mut c, &ticket.code, MARGIN, top - QR_SIDE);
    text_at(&mut c, b"F1", 11.0, MARGIN, top - QR_SIDE - 18.0, &ticket.code);
    text_at(
        &mut c,
        b"F1",
        9.0,
        MARGIN,
        MARGIN,
        "Show this page at the door, printed or on your phone. Each ticket admits one person, once.",
    );
    c.finish().to_vec()
}

/// Lines of text down the page from `y`.
struct Lines {
    y: f32,
}

impl Lines {
    fn write(&mut self, c: &mut Content, font: &[u8], size: f32, text: &str, gap: f32) {
        text_at(c, font, size, MARGIN, self.y, text);
        self.y -= size + gap;
    }
}

fn text_at(c: &mut Content, font: &[u8], size: f32, x: f32, y: f32, text: &str) {
    c.begin_text();
    c.set_font(Name(font), size);
    c.next_line(x, y);
    c.show(Str(&win_ansi(text)));
    c.end_text();
}

/// Draws the QR code of `data` with its lower left corner at (x, y).
fn qr(c: &mut Content, data: &str, x: f32, y: f32) {
    // A 22-character code always fits; anything else would be a bug upstream, shown as a
    // blank square rather than a failed download.
    let Ok(code) = QrCode::new(data.as_bytes()) else {
        return;
    };
    let width = code.width();
    let module = QR_SIDE / (width + 2 * QUIET_MODULES) as f32;
    let colors = code.to_colors();
    c.set_fill_gray(0.0);
    // One rectangle per run of dark modules in a row: fewer shapes, and no hairline seams
    // between neighbours when a viewer anti-aliases.
    for (row, modules) in colors.chunks(width).enumerate() {
        // Rows count down from the top; PDF's y axis goes up.
        let bottom = y + QR_SIDE - (row + QUIET_MODULES + 1) as f32 * module;
        let mut col = 0;
        while col < width {
            if modules[col] != Color::Dark {
                col += 1;
                continue;
            }
            let start = col;
            while col < width && modules[col] == Color::Dark {
                col += 1;
            }
            let left = x + (start + QUIET_MODULES) as f32 * module;
            c.rect(left, bottom, (col - start) as f32 * module, module);
        }
    }
    c.fill_nonzero();
}

/// `text` in the WinAnsi encoding of the standard fonts: Latin-1 letters as they are, the euro
/// sign at 0x80, anything else (and control characters) as `?`.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|ch| match ch {
            ' '..='~' | '\u{a0}'..='\u{ff}' => ch as u8,
            '€' => 0x80,
            _ => b'?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_outside_latin_1_becomes_question_marks() {
        assert_eq!(super::win_ansi("José €5 Ω\n"), b"Jos\xe9 \x805 ??".to_vec());
    }
}
