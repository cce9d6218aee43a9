// The byte encoding of the log's command records (store/command.h) and of
// the state's snapshot sections (KV, catalog, tokens): LEB128 varints and
// length-prefixed bytes.
//
// Reading is strict and fails stickily: a varint must be in shortest form
// and fit 64 bits (one value has exactly one encoding, so equal commands are
// equal bytes), every length is checked against its limit and against the
// bytes left before anything is allocated, and after the first problem every
// read returns a zero value with ok() false and error() saying where and
// what, so a parser checks once at the end instead of after every field.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rampart::store {

class ByteOut {
public:
    ByteOut() : d_(&s_) {}
    // Append to the caller's string (a piece of a longer stream) rather
    // than to one of its own; take() then returns nothing.
    explicit ByteOut(std::string& sink) : d_(&sink) {}
    ByteOut(const ByteOut&) = delete;
    ByteOut& operator=(const ByteOut&) = delete;

    size_t size() const { return d_->size(); }
    void u8(uint8_t v) { d_->push_back(static_cast<char>(v)); }
    void varint(uint64_t v) {
        while (v >= 0x80) {
            u8(static_cast<uint8_t>(v | 0x80));
            v >>= 7;
        }
        u8(static_cast<uint8_t>(v));
    }
    void bytes(std::string_view b) {
        varint(b.size());
        d_->append(b);
    }
    void raw(std::string_view b) { d_->append(b); }
    std::string take() { return std::move(s_); }

private:
    std::string s_;
    std::string* d_;
};

// `what` names the field in error(): "offset 12: truncated key".
class ByteIn {
public:
    explicit ByteIn(std::string_view s) : s_(s) {}
    bool ok() const { return ok_; }
    // "offset N: what" for the first problem; empty while ok().
    const std::string& error() const { return error_; }
    size_t offset() const { return pos_; }
    bool at_end() const { return pos_ == s_.size(); }
    // Record a problem the caller found (a value out of range); only the
    // first one is kept.
    void fail(std::string_view what) {
        if (!ok_) return;
        ok_ = false;
        error_ = "offset " + std::to_string(pos_) + ": ";
        error_ += what;
    }
    void invalidate() { fail("malformed"); }

    uint8_t u8(const char* what = "byte") {
        if (!ok_) return 0;
        if (pos_ >= s_.size()) return truncated(what), 0;
        return static_cast<uint8_t>(s_[pos_++]);
    }
    // At most 10 bytes; the tenth may only carry bit 63.
    uint64_t varint(const char* what = "number") {
        uint64_t v = 0;
        for (int i = 0; i < 10 && ok_; i++) {
            if (pos_ >= s_.size()) return truncated(what), 0;
            auto b = static_cast<uint8_t>(s_[pos_++]);
            if (i == 9 && b > 1) return fail(std::string(what) + " overflows 64 bits"), 0;
            v |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
            if ((b & 0x80) == 0) {
                if (b == 0 && i > 0) return fail(std::string(what) + " is not in shortest form"), 0;
                return v;
            }
        }
        return 0;
    }
    std::string bytes(size_t max, const char* what = "bytes") {
        uint64_t n = varint(what);
        if (!ok_) return {};
        if (n > max) return fail(over(what, " length ", n, max)), std::string();
        if (n > s_.size() - pos_) return truncated(what), std::string();
        std::string out(s_.substr(pos_, static_cast<size_t>(n)));
        pos_ += static_cast<size_t>(n);
        return out;
    }
    std::string_view raw(size_t n, const char* what = "bytes") {
        if (!ok_) return {};
        if (n > s_.size() - pos_) return truncated(what), std::string_view();
        std::string_view out = s_.substr(pos_, n);
        pos_ += n;
        return out;
    }
    // A count of items of at least one byte each: a count the remaining
    // input cannot hold is refused before anything is reserved for it.
    uint64_t count(uint64_t max, const char* what = "count") {
        uint64_t n = varint(what);
        if (!ok_) return 0;
        if (n > max) return fail(over(what, " ", n, max)), 0;
        if (n > s_.size() - pos_) return truncated(what), 0;
        return n;
    }

private:
    void truncated(const char* what) { fail(std::string("truncated ") + what); }
    static std::string over(const char* what, const char* sep, uint64_t n, uint64_t max) {
        return what + (sep + std::to_string(n)) + " over the limit " + std::to_string(max);
    }

    std::string_view s_;
    size_t pos_ = 0;
    bool ok_ = true;
    std::string error_;
};

}  // namespace rampart::store
