#include "slimlm/core/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace slimlm {
namespace {

std::string ErrnoText() { return std::strerror(errno); }

}  // namespace

Result<MappedFile> MappedFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFoundError("{}: no such file", path);
    return IoError("{}: cannot open: {}", path, ErrnoText());
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    Status s = IoError("{}: cannot stat: {}", path, ErrnoText());
    ::close(fd);
    return s;
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return InvalidArgumentError("{}: is a directory, expected a file", path);
  }
  MappedFile file;
  file.path_ = path;
  file.size_ = static_cast<size_t>(st.st_size);
  if (file.size_ > 0) {
    void* addr = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) {
      Status s = IoError("{}: cannot map {} bytes: {}", path, file.size_, ErrnoText());
      ::close(fd);
      return s;
    }
    file.data_ = static_cast<const uint8_t*>(addr);
  }
  ::close(fd);
  return file;
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)), data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
    path_ = std::move(other.path_);
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

Result<std::string> ReadFileToString(const std::string& path) {
  if (IsDirectory(path)) return InvalidArgumentError("{}: is a directory, expected a file", path);
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    if (errno == ENOENT) return NotFoundError("{}: no such file", path);
    return IoError("{}: cannot open: {}", path, ErrnoText());
  }
  std::string out;
  char buffer[1 << 16];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), f)) > 0) out.append(buffer, n);
  bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return IoError("{}: read failed", path);
  return out;
}

AtomicFileWriter::AtomicFileWriter(std::string path, std::string temp_path, FILE* file)
    : path_(std::move(path)), temp_path_(std::move(temp_path)), file_(file) {}

Result<std::unique_ptr<AtomicFileWriter>> AtomicFileWriter::Create(const std::string& path) {
  if (IsDirectory(path)) return InvalidArgumentError("{}: is a directory, expected a file", path);
  std::string temp = path + ".tmp." + std::to_string(::getpid());
  FILE* f = std::fopen(temp.c_str(), "wb");
  if (f == nullptr) return IoError("{}: cannot create: {}", path, ErrnoText());
  return std::unique_ptr<AtomicFileWriter>(new AtomicFileWriter(path, temp, f));
}

AtomicFileWriter::~AtomicFileWriter() {
  if (file_ != nullptr) std::fclose(file_);
  if (!committed_) std::remove(temp_path_.c_str());
}

Status AtomicFileWriter::Write(const void* data, size_t size) {
  if (file_ == nullptr) return FailedPreconditionError("{}: write after commit", path_);
  if (size == 0) return Status::Ok();
  if (std::fwrite(data, 1, size, file_) != size) {
    return IoError("{}: write failed: {}", path_, ErrnoText());
  }
  offset_ += size;
  return Status::Ok();
}

Status AtomicFileWriter::WriteZeros(size_t count) {
  static const char kZeros[256] = {};
  while (count > 0) {
    size_t n = count < sizeof(kZeros) ? count : sizeof(kZeros);
    SLIMLM_RETURN_IF_ERROR(Write(kZeros, n));
    count -= n;
  }
  return Status::Ok();
}

Status AtomicFileWriter::Commit() {
  if (file_ == nullptr) return FailedPreconditionError("{}: committed twice", path_);
  bool ok = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
  ok = (std::fclose(file_) == 0) && ok;
  file_ = nullptr;
  if (!ok) return IoError("{}: write failed: {}", path_, ErrnoText());
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    return IoError("{}: cannot rename into place: {}", path_, ErrnoText());
  }
  committed_ = true;
  return Status::Ok();
}

Status WriteFileAtomically(const std::string& path, std::string_view contents) {
  SLIMLM_ASSIGN_OR_RETURN(auto writer, AtomicFileWriter::Create(path));
  SLIMLM_RETURN_IF_ERROR(writer->Write(contents));
  return writer->Commit();
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace slimlm
