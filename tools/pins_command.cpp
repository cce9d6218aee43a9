// rampartctl pins compute CERT.pem         both pin forms of a certificate
// rampartctl pins show FILE                the pins file, one line per pin
// rampartctl pins add FILE NODE PIN        add PIN to NODE's set (at most 2)
// rampartctl pins remove FILE NODE PIN     remove PIN from NODE's set
//
// Edits are written to FILE.tmp (mode kept) and renamed over FILE, so a
// node reloading on SIGHUP never reads half a file. The node checks the
// file again when it loads it; this tool refuses what the node would.
#include "pins_command.h"

#include <cjson/cJSON.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "util/sha256.h"

namespace rampartctl {
namespace {

constexpr int kOk = 0;
constexpr int kFailure = 1;
constexpr int kUsage = 2;
constexpr size_t kMaxPinsPerPeer = 2;  // current and next

int fail(const std::string& msg) {
    fprintf(stderr, "rampartctl: %s\n", msg.c_str());
    return kFailure;
}

int pins_usage() {
    fprintf(stderr,
            "usage: rampartctl pins compute CERT.pem\n"
            "       rampartctl pins show FILE\n"
            "       rampartctl pins add FILE NODE_ID PIN\n"
            "       rampartctl pins remove FILE NODE_ID PIN\n"
            "PIN is sha256:<64 hex> (whole certificate) or spki-sha256:<64 hex> (public key)\n");
    return kUsage;
}

bool read_file(const std::string& path, std::string* out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    std::ostringstream ss;
    ss << in.rdbuf();
    *out = ss.str();
    return true;
}

// ---- certificate pins ----------------------------------------------------

bool base64_decode(const std::string& in, std::string* out) {
    int bits = 0, value = 0;
    for (char c : in) {
        int d;
        if (c >= 'A' && c <= 'Z')
            d = c - 'A';
        else if (c >= 'a' && c <= 'z')
            d = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            d = c - '0' + 52;
        else if (c == '+')
            d = 62;
        else if (c == '/')
            d = 63;
        else if (c == '=' || c == '\n' || c == '\r' || c == ' ')
            continue;
        else
            return false;
        value = (value << 6) | d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out->push_back(static_cast<char>((value >> bits) & 0xff));
        }
    }
    return !out->empty();
}

// The first certificate of a PEM file, as DER.
bool pem_certificate(const std::string& pem, std::string* der) {
    const std::string begin = "-----BEGIN CERTIFICATE-----", end = "-----END CERTIFICATE-----";
    size_t b = pem.find(begin), e = pem.find(end);
    if (b == std::string::npos || e == std::string::npos || e < b) return false;
    b += begin.size();
    return base64_decode(pem.substr(b, e - b), der);
}

// One DER element at `pos`: where its content starts and ends.
struct Der {
    size_t start = 0;  // the tag byte
    size_t content = 0;
    size_t end = 0;
};

bool der_element(const std::string& d, size_t pos, size_t limit, Der* out) {
    if (pos + 2 > limit) return false;
    size_t len = static_cast<unsigned char>(d[pos + 1]);
    size_t content = pos + 2;
    if (len & 0x80) {
        size_t n = len & 0x7f;
        if (n == 0 || n > 4 || content + n > limit) return false;
        len = 0;
        for (size_t i = 0; i < n; ++i) len = (len << 8) | static_cast<unsigned char>(d[content + i]);
        content += n;
    }
    if (len > limit - content) return false;
    *out = {pos, content, content + len};
    return true;
}

// Certificate -> tbsCertificate -> [version] serial sigAlg issuer validity
// subject subjectPublicKeyInfo: the DER of the last one.
bool spki_of(const std::string& der, std::string* spki) {
    Der cert, tbs, field;
    if (!der_element(der, 0, der.size(), &cert) || !der_element(der, cert.content, cert.end, &tbs)) return false;
    size_t pos = tbs.content;
    if (!der_element(der, pos, tbs.end, &field)) return false;
    if (static_cast<unsigned char>(der[pos]) == 0xa0) pos = field.end;  // explicit version
    for (int i = 0; i < 5; ++i) {                                       // serial .. subject
        if (!der_element(der, pos, tbs.end, &field)) return false;
        pos = field.end;
    }
    if (!der_element(der, pos, tbs.end, &field) || der[pos] != 0x30) return false;
    *spki = der.substr(field.start, field.end - field.start);
    return true;
}

int compute(const std::string& path, bool json) {
    std::string pem, der, spki;
    if (!read_file(path, &pem)) return fail("cannot read " + path);
    if (!pem_certificate(pem, &der) || !spki_of(der, &spki)) return fail(path + ": not a PEM certificate");
    std::string cert_pin = "sha256:" + rampart::util::sha256_hex(der);
    std::string spki_pin = "spki-sha256:" + rampart::util::sha256_hex(spki);
    if (json) {
        printf("{\"sha256\":\"%s\",\"spki_sha256\":\"%s\"}\n", cert_pin.c_str(), spki_pin.c_str());
    } else {
        printf("%s\n%s\n", cert_pin.c_str(), spki_pin.c_str());
    }
    return kOk;
}

// ---- the pins file -------------------------------------------------------

bool valid_pin(const std::string& pin) {
    std::string hex;
    if (pin.rfind("sha256:", 0) == 0)
        hex = pin.substr(7);
    else if (pin.rfind("spki-sha256:", 0) == 0)
        hex = pin.substr(12);
    else
        return false;
    if (hex.size() != 64) return false;
    for (char c : hex) {
        if (!isxdigit(static_cast<unsigned char>(c))) return false;
    }
    return true;
}

struct JsonDoc {
    cJSON* root = nullptr;
    ~JsonDoc() { cJSON_Delete(root); }
};

// A missing file is an empty pin set; anything else must parse.
bool load_pins(const std::string& path, JsonDoc* doc, std::string* error) {
    std::string text;
    if (!read_file(path, &text)) {
        if (access(path.c_str(), F_OK) == 0) {
            *error = "cannot read " + path;
            return false;
        }
        text = "{\"peers\": {}, \"report_only\": false}";
    }
    doc->root = cJSON_ParseWithLength(text.data(), text.size());
    cJSON* peers = doc->root ? cJSON_GetObjectItemCaseSensitive(doc->root, "peers") : nullptr;
    if (doc->root == nullptr || !cJSON_IsObject(doc->root) || !cJSON_IsObject(peers)) {
        *error = path + ": not a pins file ({\"peers\": {...}})";
        return false;
    }
    return true;
}

// A node's pins as an array (a single string becomes a one-item array).
cJSON* pin_set(cJSON* peers, const std::string& node) {
    cJSON* entry = cJSON_GetObjectItemCaseSensitive(peers, node.c_str());
    if (entry == nullptr) {
        entry = cJSON_AddArrayToObject(peers, node.c_str());
    } else if (cJSON_IsString(entry)) {
        cJSON* arr = cJSON_CreateArray();
        cJSON_AddItemToArray(arr, cJSON_CreateString(entry->valuestring));
        cJSON_ReplaceItemInObjectCaseSensitive(peers, node.c_str(), arr);
        entry = arr;
    }
    return cJSON_IsArray(entry) ? entry : nullptr;
}

bool save_pins(const std::string& path, const JsonDoc& doc, std::string* error) {
    char* text = cJSON_Print(doc.root);
    if (text == nullptr) {
        *error = "out of memory";
        return false;
    }
    std::string tmp = path + ".tmp";
    struct stat st {};
    mode_t mode = stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0644;
    std::unique_ptr<FILE, int (*)(FILE*)> f(fopen(tmp.c_str(), "w"), fclose);
    bool ok = f && fputs(text, f.get()) >= 0 && fputc('\n', f.get()) != EOF;
    ok = f && fflush(f.get()) == 0 && fsync(fileno(f.get())) == 0 && ok;
    f.reset();
    cJSON_free(text);
    if (!ok || chmod(tmp.c_str(), mode) != 0 || rename(tmp.c_str(), path.c_str()) != 0) {
        unlink(tmp.c_str());
        *error = "cannot write " + path;
        return false;
    }
    return true;
}

int show(const std::string& path, bool json) {
    JsonDoc doc;
    std::string error;
    if (!load_pins(path, &doc, &error)) return fail(error);
    if (json) {
        char* text = cJSON_PrintUnformatted(doc.root);
        printf("%s\n", text ? text : "{}");
        cJSON_free(text);
        return kOk;
    }
    cJSON* peers = cJSON_GetObjectItemCaseSensitive(doc.root, "peers");
    cJSON* node = nullptr;
    cJSON_ArrayForEach(node, peers) {
        if (cJSON_IsString(node)) printf("%s\t%s\n", node->string, node->valuestring);
        cJSON* pin = nullptr;
        if (cJSON_IsArray(node)) {
            cJSON_ArrayForEach(pin, node)
                printf("%s\t%s\n", node->string, cJSON_IsString(pin) ? pin->valuestring : "?");
        }
    }
    cJSON* ro = cJSON_GetObjectItemCaseSensitive(doc.root, "report_only");
    printf("report_only\t%s\n", cJSON_IsTrue(ro) ? "true" : "false");
    return kOk;
}

int edit(const std::string& path, const std::string& node, const std::string& pin, bool add) {
    if (!valid_pin(pin)) return fail("not a pin: " + pin + " (sha256:<64 hex> or spki-sha256:<64 hex>)");
    JsonDoc doc;
    std::string error;
    if (!load_pins(path, &doc, &error)) return fail(error);
    cJSON* set = pin_set(cJSON_GetObjectItemCaseSensitive(doc.root, "peers"), node);
    if (set == nullptr) return fail(path + ": the pins of " + node + " are neither a string nor a list");
    int found = -1, i = 0;
    cJSON* item = nullptr;
    cJSON_ArrayForEach(item, set) {
        if (cJSON_IsString(item) && pin == item->valuestring) found = i;
        ++i;
    }
    if (add) {
        if (found >= 0) return kOk;
        if (static_cast<size_t>(cJSON_GetArraySize(set)) >= kMaxPinsPerPeer) {
            return fail(node + " already has a current and a next pin; remove one first");
        }
        cJSON_AddItemToArray(set, cJSON_CreateString(pin.c_str()));
    } else {
        if (found < 0) return fail(node + " has no pin " + pin);
        cJSON_DeleteItemFromArray(set, found);
        if (cJSON_GetArraySize(set) == 0)
            cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc.root, "peers"), node.c_str());
    }
    if (!save_pins(path, doc, &error)) return fail(error);
    return kOk;
}

}  // namespace

int pins_command(const std::vector<std::string>& args, bool json) {
    if (args.size() == 3 && args[1] == "compute") return compute(args[2], json);
    if (args.size() == 3 && args[1] == "show") return show(args[2], json);
    if (args.size() == 5 && (args[1] == "add" || args[1] == "remove")) {
        return edit(args[2], args[3], args[4], args[1] == "add");
    }
    return pins_usage();
}

}  // namespace rampartctl
