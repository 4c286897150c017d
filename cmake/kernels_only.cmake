# Dependencies of a SLIMLM_KERNELS_ONLY build (see the option in CMakeLists.txt): fmt and, for the
# tests, GoogleTest, taken from packages for the target when they exist and otherwise from the
# build machine's sources, which suit any target.

find_package(fmt QUIET)
if(NOT fmt_FOUND)
  # fmt header-only from the build machine's headers. They are reached through a folder holding
  # only a link to them, because adding /usr/include itself would put the build machine's C
  # library headers ahead of the target's.
  find_path(SLIMLM_FMT_HEADERS fmt/format.h PATHS /usr/include NO_CMAKE_FIND_ROOT_PATH
            NO_DEFAULT_PATH)
  if(NOT SLIMLM_FMT_HEADERS)
    message(FATAL_ERROR "fmt not found: install libfmt-dev (its headers suit any target)")
  endif()
  set(fmt_link_dir ${CMAKE_BINARY_DIR}/fmt-headers)
  file(MAKE_DIRECTORY ${fmt_link_dir})
  file(CREATE_LINK ${SLIMLM_FMT_HEADERS}/fmt ${fmt_link_dir}/fmt SYMBOLIC)
  add_library(slimlm_fmt_header_only INTERFACE)
  target_include_directories(slimlm_fmt_header_only SYSTEM INTERFACE ${fmt_link_dir})
  target_compile_definitions(slimlm_fmt_header_only INTERFACE FMT_HEADER_ONLY=1)
  add_library(fmt::fmt ALIAS slimlm_fmt_header_only)
endif()

if(SLIMLM_BUILD_TESTS)
  find_package(GTest QUIET)
  if(NOT GTest_FOUND)
    set(SLIMLM_GTEST_SOURCES /usr/src/googletest CACHE PATH "GoogleTest sources to build")
    if(NOT EXISTS ${SLIMLM_GTEST_SOURCES}/CMakeLists.txt)
      message(FATAL_ERROR "GoogleTest not found: install googletest (its sources)")
    endif()
    set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
    add_subdirectory(${SLIMLM_GTEST_SOURCES} ${CMAKE_BINARY_DIR}/googletest EXCLUDE_FROM_ALL)
  endif()
endif()
