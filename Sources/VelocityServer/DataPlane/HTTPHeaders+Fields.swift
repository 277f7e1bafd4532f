import HTTPTypes
import NIOHTTP1

extension HTTPHeaders {
    /// NIO's HTTP/1 form of transport-neutral fields, with room for `extra` more.
    init(_ fields: HTTPFields, reservingExtra extra: Int = 0) {
        self.init()
        reserveCapacity(fields.count + extra)
        for field in fields { add(name: field.name.rawName, value: field.value) }
    }
}
