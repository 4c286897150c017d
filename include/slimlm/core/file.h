// Files: read-only memory maps, whole-file reads, and writers that never leave a half file.
#ifndef SLIMLM_CORE_FILE_H_
#define SLIMLM_CORE_FILE_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "slimlm/core/status.h"

namespace slimlm {

// A whole file mapped read-only. Move-only; unmaps on destruction. An empty file maps to an
// empty span. Pages are shared with the page cache: loading a model this way copies nothing.
class MappedFile {
 public:
  static Result<MappedFile> Open(const std::string& path);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Drops this process's resident pages wholly inside [data, data + bytes) when that range lies in
// a live MappedFile (madvise MADV_DONTNEED): they stay in the page cache and are mapped again,
// unchanged, when next read. For mapped bytes a program has copied and will rarely read again,
// such as a model's matrices once packed, which would otherwise count twice in its resident
// memory. Does nothing for memory that is not such a mapping.
void ReleaseMappedPages(const void* data, size_t bytes);

// Reads a whole file into a string.
Result<std::string> ReadFileToString(const std::string& path);

// Writes to "<path>.tmp.<pid>.<n>" and renames it over `path` on Commit(). If the writer is
// destroyed without a successful Commit (an error, an exception, an early return), or SIGINT,
// SIGTERM or SIGHUP ends the process meanwhile, the temporary file is removed and `path` is
// untouched. One writer is not thread-safe; several may run at once.
class AtomicFileWriter {
 public:
  static Result<std::unique_ptr<AtomicFileWriter>> Create(const std::string& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  Status Write(const void* data, size_t size);
  Status Write(std::string_view text) { return Write(text.data(), text.size()); }
  // Writes `count` zero bytes (padding).
  Status WriteZeros(size_t count);
  // Bytes written so far.
  uint64_t offset() const { return offset_; }
  // Flushes, fsyncs and renames into place.
  Status Commit();

 private:
  AtomicFileWriter(std::string path, std::string temp_path, FILE* file);
  std::string path_;
  std::string temp_path_;
  FILE* file_ = nullptr;
  uint64_t offset_ = 0;
  bool committed_ = false;
  int cleanup_slot_ = -1;  // Registration for removal on a fatal signal.
};

// Writes a whole file atomically.
Status WriteFileAtomically(const std::string& path, std::string_view contents);

// True when the path exists and is a directory / a regular file.
bool IsDirectory(const std::string& path);
bool IsRegularFile(const std::string& path);

}  // namespace slimlm

#endif  // SLIMLM_CORE_FILE_H_
