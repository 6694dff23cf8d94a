//! Prints ts/wasm/abi.ts, the host's side of the contract, from the engine's tables
//! (`wg_netstack_engine::abi`, and the names of the close reasons, drop reasons and stats
//! records). `node build.mjs` runs it; a test below fails when the checked-in file is stale.
//!
//! The TypeScript it writes: the constants; the `wgn_*` exports' typings; `readEvent`,
//! which reads one event at fixed offsets and hands its fields to an `EventFields`; and a
//! `write<Command>` function for each command.

use std::fmt::Write;
use wg_netstack_engine::abi::{self, FieldType, Record, WasmType};
use wg_netstack_engine::addr::ADDRESS_SIZE;
use wg_netstack_engine::counters::DropReason;
use wg_netstack_engine::events::CloseReason;
use wg_netstack_engine::tcp::{ConnectionStats, TcpTotals};
use wg_netstack_engine::wire::Unreachable;

fn main() {
    print!("{}", typescript());
}

fn typescript() -> String {
    let mut out = String::from(
        "// Generated from crates/engine/src/abi.rs by `node build.mjs`: do not edit.\n\
         // The contract with the wasm engine; what each record and call means is documented there\n\
         // and in crates/engine/src/ffi.rs.\n\n",
    );
    let _ = writeln!(out, "export const ADDRESS_SIZE = {ADDRESS_SIZE};\n");
    constants(&mut out, "EVENT", "The byte that opens each event in the log.", abi::event::ALL);
    constants(&mut out, "COMMAND", "The byte that opens each command the host writes.", abi::command::ALL);
    constants(&mut out, "ERROR", "Negative returns of the engine's calls.", abi::error::ALL);
    let messages: Vec<(&str, String)> = abi::request_message::ALL.iter().map(|(name, text)| (*name, format!("{text:?}"))).collect();
    constants(
        &mut out,
        "REQUEST_MESSAGE",
        "What the host says when it refuses a UDP send or ping itself, in the engine's words.",
        &messages,
    );
    let close: Vec<&str> = CloseReason::ALL.iter().map(|r| r.name()).collect();
    names(&mut out, "CLOSE_REASONS", "How a TCP connection ended, by the number in TCP_CLOSED.", &close);
    let unreachable: Vec<&str> = Unreachable::ALL.iter().map(|r| r.name()).collect();
    names(&mut out, "UNREACHABLE_REASONS", "What an ICMP destination unreachable said, by the number in UDP_UNREACHABLE.", &unreachable);
    let dropped: Vec<&str> = DropReason::ALL.iter().map(|r| r.name()).collect();
    names(&mut out, "DROP_REASONS", "The dropped-packet counters, in the order the stats hold them.", &dropped);
    names(&mut out, "PEER_STATS", "The numbers of a peer's stats record, in order.", &abi::PEER_STATS);
    let tcp: Vec<&str> = TcpTotals::default().fields().iter().map(|(name, _)| *name).collect();
    names(&mut out, "TCP_TOTALS", "The server's TCP numbers, in order.", &tcp);
    names(&mut out, "UDP_TOTALS", "The server's UDP numbers, in order.", &abi::UDP_TOTALS);
    let conn: Vec<&str> = ConnectionStats::default().fields().iter().map(|(name, _)| *name).collect();
    names(&mut out, "CONNECTION_STATS", "One connection's numbers, in order.", &conn);
    options(&mut out);
    exports(&mut out);
    event_reader(&mut out);
    command_writers(&mut out);
    out
}

fn constants<T: std::fmt::Display>(out: &mut String, name: &str, doc: &str, all: &[(&str, T)]) {
    let _ = writeln!(out, "/** {doc} */\nexport const {name} = {{");
    for (key, value) in all {
        let _ = writeln!(out, "  {key}: {value},");
    }
    out.push_str("} as const;\n\n");
}

fn names(out: &mut String, name: &str, doc: &str, all: &[&str]) {
    let list: Vec<String> = all.iter().map(|n| format!("\"{n}\"")).collect();
    let _ = writeln!(out, "/** {doc} */\nexport const {name} = [{}] as const;\n", list.join(", "));
}

fn options(out: &mut String) {
    out.push_str("/** The numeric options: the range the host accepts and the default (timeouts in milliseconds). */\n");
    out.push_str("export const OPTIONS = {\n");
    for (_, o) in abi::option::ALL {
        let _ = writeln!(out, "  {}: {{ min: {}, max: {}, default: {} }},", o.name, o.min, o.max, o.default);
    }
    out.push_str("} as const;\n\n");
}

fn exports(out: &mut String) {
    out.push_str("/** The engine's C ABI (crates/engine/src/ffi.rs), as TypeScript sees it. */\nexport interface EngineExports {\n");
    out.push_str("  memory: WebAssembly.Memory;\n");
    for export in abi::EXPORTS {
        let params: Vec<String> = export.params.iter().map(|(name, ty)| format!("{}: {}", camel(name), wasm_type(*ty))).collect();
        let _ = writeln!(out, "  {}({}): {};", export.name, params.join(", "), wasm_type(export.returns));
    }
    out.push_str("}\n\n");
    out.push_str("/** The parameters of each export, by name: the module must export exactly these, each taking as many. */\n");
    out.push_str("export const EXPORT_PARAMS = {\n");
    for export in abi::EXPORTS {
        let params: Vec<String> = export.params.iter().map(|(name, _)| format!("\"{}\"", camel(name))).collect();
        let _ = writeln!(out, "  {}: [{}],", export.name, params.join(", "));
    }
    out.push_str("} as const;\n\n");
}

fn wasm_type(ty: WasmType) -> &'static str {
    match ty {
        WasmType::I32 | WasmType::U32 | WasmType::F64 | WasmType::Pointer => "number",
    }
}

fn event_reader(out: &mut String) {
    out.push_str(
        "/** What `readEvent` hands each event's fields to, in the order of the record; `A` is how the host holds an address. */\n\
         export interface EventFields<A> {\n",
    );
    for record in abi::EVENTS {
        let mut params: Vec<String> = record.fields.iter().map(|(name, ty)| format!("{}: {}", camel(name), ts_type(*ty))).collect();
        params.extend(record.payload.map(|name| format!("{}: Uint8Array", camel(name))));
        let _ = writeln!(out, "  /** {} */\n  {}({}): void;", record.doc.trim(), camel(record.variant), params.join(", "));
    }
    out.push_str("}\n\n");
    out.push_str(
        "/** The event log as `readEvent` sees it. */\n\
         export interface EventLog<A> {\n  \
           readonly bytes: Uint8Array;\n  \
           readonly view: DataView;\n  \
           /** The address at `at` (ADDRESS_SIZE bytes). */\n  \
           address(at: number): A;\n\
         }\n\n\
         /**\n \
          * Reads the event at `at` and hands its fields to `fields`; returns where the next one starts.\n \
          * Payloads are views of the log, valid until the next call into the engine.\n \
          */\n\
         export function readEvent<A>(log: EventLog<A>, at: number, fields: EventFields<A>): number {\n  \
           switch (log.bytes[at]) {\n",
    );
    for record in abi::EVENTS {
        let mut offset = 1;
        let mut args = Vec::new();
        for (_, ty) in record.fields {
            args.push(match ty {
                FieldType::U8 => format!("log.bytes[at + {offset}]!"),
                FieldType::U32 => format!("log.view.getUint32(at + {offset}, true)"),
                FieldType::Address => format!("log.address(at + {offset})"),
                FieldType::Key => format!("log.bytes.slice(at + {offset}, at + {})", offset + 32),
            });
            offset += ty.width();
        }
        let _ = writeln!(out, "    case {}: {{\n      // {}", record.kind, record.name);
        let end = match record.payload {
            None => format!("{offset}"),
            Some(_) => {
                let _ = writeln!(out, "      const len = log.view.getUint32(at + {offset}, true);");
                args.push(format!("log.bytes.subarray(at + {}, at + {} + len)", offset + 4, offset + 4));
                format!("{} + len", offset + 4)
            }
        };
        let _ = writeln!(out, "      fields.{}({});\n      return at + {end};\n    }}", camel(record.variant), args.join(", "));
    }
    out.push_str("  }\n  throw new Error(`unknown engine event kind ${log.bytes[at]}`);\n}\n\n");
}

fn ts_type(ty: FieldType) -> &'static str {
    match ty {
        FieldType::U8 | FieldType::U32 => "number",
        FieldType::Address => "A",
        FieldType::Key => "Uint8Array",
    }
}

fn command_writers(out: &mut String) {
    out.push_str(
        "/** Where the `write` functions below put commands; `A` is how the host holds an address. */\n\
         export interface CommandArea<A> {\n  \
           /** Makes room for `len` more bytes; returns where to write them, in `bytes` and `view` as they are after the call. */\n  \
           reserve(len: number): number;\n  \
           readonly bytes: Uint8Array;\n  \
           readonly view: DataView;\n  \
           /** Writes `address` at `at` (ADDRESS_SIZE bytes). */\n  \
           address(at: number, address: A): void;\n\
         }\n",
    );
    for record in abi::COMMANDS {
        command_writer(out, record);
    }
}

fn command_writer(out: &mut String, record: &Record) {
    let mut params = vec!["area: CommandArea<A>".to_string()];
    let mut body = Vec::new();
    let mut offset = 1;
    for (name, ty) in record.fields {
        assert!(!["area", "at"].contains(name), "{}: a command field may not be called {name}", record.name);
        let name = camel(name);
        params.push(format!("{name}: {}", ts_type(*ty)));
        body.push(match ty {
            FieldType::U8 => format!("area.bytes[at + {offset}] = {name};"),
            FieldType::U32 => format!("area.view.setUint32(at + {offset}, {name}, true);"),
            FieldType::Address => format!("area.address(at + {offset}, {name});"),
            other => panic!("{}: the host writes no {other:?} fields yet: teach the generator how", record.name),
        });
        offset += ty.width();
    }
    let mut len = format!("{offset}");
    if let Some(name) = record.payload {
        let name = camel(name);
        params.push(format!("{name}: Uint8Array"));
        body.push(format!("area.view.setUint32(at + {offset}, {name}.length, true);"));
        body.push(format!("area.bytes.set({name}, at + {});", offset + 4));
        len = format!("{} + {name}.length", offset + 4);
    }
    let _ = writeln!(
        out,
        "\n/** {}: {} */\nexport function write{}<A>({}): void {{\n  const at = area.reserve({len});\n  area.bytes[at] = {};",
        record.name,
        record.doc.trim(),
        record.variant,
        params.join(", "),
        record.kind
    );
    for line in body {
        let _ = writeln!(out, "  {line}");
    }
    out.push_str("}\n");
}

/// `snake_case` or `PascalCase` to `camelCase`.
fn camel(name: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for (i, c) in name.chars().enumerate() {
        if c == '_' {
            upper = true;
        } else if i == 0 {
            out.push(c.to_ascii_lowercase());
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_typescript_is_up_to_date() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../ts/wasm/abi.ts");
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(checked_in == typescript(), "ts/wasm/abi.ts is out of date: run `node build.mjs`");
    }

    #[test]
    fn names_turn_to_camel_case() {
        assert_eq!(camel("fin_wait_2_ms"), "finWait2Ms");
        assert_eq!(camel("TcpIncoming"), "tcpIncoming");
        assert_eq!(camel("len"), "len");
    }
}
