import HTTPTypes
import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The HTML page `browse` shows for a directory without an index file.
enum DirectoryListing {
    private struct Entry {
        let name: String
        let isDirectory: Bool
        let size: Int
        let modified: Int
    }

    static func response(_ directory: OpenFile, path: Substring, isVisible: (String) -> Bool) -> StaticResponse {
        var entries = read(directory).filter { isVisible($0.name) }
        entries.sort { ($0.isDirectory ? 0 : 1, $0.name) < ($1.isDirectory ? 0 : 1, $1.name) }
        let title = "Index of " + escape(String(path))
        var html = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>\(title)</title></head><body>\n"
        html += "<h1>\(title)</h1>\n<table>\n<tr><th>Name</th><th>Size</th><th>Modified</th></tr>\n"
        if path != "/" { html += "<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n" }
        for entry in entries {
            let shown = entry.name + (entry.isDirectory ? "/" : "")
            html += "<tr><td><a href=\"./\(escape(percentEncoded(entry.name)))\(entry.isDirectory ? "/" : "")\">"
            html += escape(shown) + "</a></td><td>\(entry.isDirectory ? "" : String(entry.size))</td>"
            html += "<td>\(HTTPDate.format(entry.modified))</td></tr>\n"
        }
        html += "</table>\n</body></html>\n"
        var response = StaticResponse(status: .ok, body: html)
        response.headerFields[.contentType] = "text/html; charset=utf-8"
        return response
    }

    private static func read(_ directory: OpenFile) -> [Entry] {
        // The stream takes its own descriptor: closing it must not close the one the caller holds.
        guard let stream = fdopendir(dup(directory.descriptor)) else { return [] }
        defer { closedir(stream) }
        var entries: [Entry] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
                String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard name != ".", name != ".." else { continue }
            var info = stat()
            guard fstatat(directory.descriptor, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            entries.append(
                Entry(
                    name: name, isDirectory: info.st_mode & S_IFMT == S_IFDIR, size: Int(info.st_size),
                    modified: Int(info.st_mtim.tv_sec)))
        }
        return entries
    }

    private static func escape(_ text: String) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    /// A name as a path segment: everything but unreserved characters escaped.
    private static func percentEncoded(_ name: String) -> String {
        var encoded = ""
        for byte in name.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                encoded.append(Character(Unicode.Scalar(byte)))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                encoded += "%" + (byte < 16 ? "0" : "") + hex
            }
        }
        return encoded
    }
}
