/// The dynamic table of RFC 9204 §3.2, as the encoder and decoder of one direction each keep it: entries
/// in insertion order, addressed by absolute index (0 for the first ever inserted), evicted oldest first
/// to stay within a capacity in bytes. The encoder decides what may be evicted; the table only counts.
struct DynamicTable {
    struct Entry: Equatable, Sendable {
        var name: String
        var value: String
        /// Lengths in bytes as the peer counted them (see ``WireString``), which sizes must agree on.
        var nameLength: Int
        var valueLength: Int

        init(name: String, value: String) {
            self.init(
                name: WireString(string: name, length: name.utf8.count),
                value: WireString(string: value, length: value.utf8.count)
            )
        }

        init(name: WireString, value: WireString) {
            self.name = name.string
            self.value = value.string
            self.nameLength = name.length
            self.valueLength = value.length
        }

        /// §3.2.1: name and value lengths plus 32.
        var size: Int { nameLength + valueLength + DynamicTable.entryOverhead }
        var wireName: WireString { WireString(string: name, length: nameLength) }
        var wireValue: WireString { WireString(string: value, length: valueLength) }
    }

    /// The per-entry overhead of §3.2.1; also the size of the smallest entry, which bounds how many fit.
    static let entryOverhead = 32

    private(set) var capacity = 0
    /// The sum of the entries' sizes, at most `capacity`.
    private(set) var size = 0
    /// Insertions ever made, duplicates included: the absolute index the next entry gets.
    private(set) var insertCount: UInt64 = 0

    /// Live entries, oldest first, from `head` on; the evicted prefix is dropped in batches so that eviction
    /// costs O(1) amortised without a deque.
    private var storage: [Entry] = []
    private var head = 0

    var count: Int { storage.count - head }
    var isEmpty: Bool { count == 0 }
    /// The absolute index of the oldest live entry; everything below it was evicted.
    var evictedCount: UInt64 { insertCount - UInt64(count) }
    var availableSpace: Int { capacity - size }

    /// The live entry with absolute index `index`, or nil when it was evicted or not inserted yet.
    subscript(absolute index: UInt64) -> Entry? {
        guard index >= evictedCount, index < insertCount else { return nil }
        return storage[head + Int(index - evictedCount)]
    }

    /// The oldest live entry, the next to be evicted.
    var oldest: Entry? { isEmpty ? nil : storage[head] }

    /// Sets the capacity and evicts the oldest entries until the rest fit (§3.2.2). Whether that is allowed
    /// is for the caller to check first.
    mutating func setCapacity(_ newCapacity: Int) {
        capacity = newCapacity
        while size > capacity { removeOldest() }
    }

    /// Whether an entry of `size` bytes can ever be inserted: larger than the capacity is an error.
    func fits(size entrySize: Int) -> Bool { entrySize <= capacity }

    /// Evicts the oldest entries until `entrySize` more bytes fit, then appends the entry. The caller makes
    /// sure the entry fits the capacity at all (``fits(size:)``) and that the entries evicted may go.
    mutating func insert(_ entry: Entry) {
        precondition(entry.size <= capacity, "dynamic table entry larger than the capacity")
        while size + entry.size > capacity { removeOldest() }
        storage.append(entry)
        size += entry.size
        insertCount += 1
    }

    /// Evicts the oldest entry, returning it with its absolute index.
    @discardableResult
    mutating func removeOldest() -> (index: UInt64, entry: Entry) {
        let index = evictedCount
        let entry = storage[head]
        size -= entry.size
        head += 1
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 32 && head * 2 >= storage.count {
            storage.removeFirst(head)
            head = 0
        }
        return (index, entry)
    }

    /// How many bytes inserting could free: the free space plus every entry below absolute index `limit`
    /// (those the encoder may evict), counted only as far as `needed` so the walk stays short.
    func reclaimableSpace(evictingBelow limit: UInt64, needed: Int) -> Int {
        var space = availableSpace
        var index = evictedCount
        while space < needed, index < limit, let entry = self[absolute: index] {
            space += entry.size
            index += 1
        }
        return space
    }

    /// The draining index of §2.1.1.1: the smallest absolute index such that evicting everything below it
    /// leaves `reserve` bytes free. The encoder stops referencing entries below it, so that once their
    /// outstanding references are acknowledged they can make room for new ones.
    func drainingIndex(reserve: Int) -> UInt64 {
        var space = availableSpace
        var index = evictedCount
        while space < reserve, let entry = self[absolute: index] {
            space += entry.size
            index += 1
        }
        return index
    }
}
