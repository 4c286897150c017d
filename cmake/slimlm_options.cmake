# Compiler flags shared by every slimlm target, and the helper that declares one library per
# folder under src/.

add_library(slimlm_flags INTERFACE)
target_compile_options(slimlm_flags INTERFACE -Wall -Wextra -Wpedantic -Wshadow
                                              -Wno-missing-field-initializers)
if(SLIMLM_WERROR)
  target_compile_options(slimlm_flags INTERFACE -Werror)
endif()
if(SLIMLM_SANITIZE)
  target_compile_options(slimlm_flags INTERFACE -fsanitize=address,undefined
                                                -fno-sanitize-recover=undefined
                                                -fno-omit-frame-pointer)
  target_link_options(slimlm_flags INTERFACE -fsanitize=address,undefined)
endif()
if(SLIMLM_NATIVE)
  target_compile_options(slimlm_flags INTERFACE -march=native)
endif()

# slimlm_library(<folder> DEPS ...) declares the library slimlm_<folder> from every .cc file under
# src/<folder>/ (one folder, one library), plus any EXTRA_SOURCES.
# EXCLUDE_REGEX drops matching sources (kernels for another CPU architecture).
function(slimlm_library folder)
  cmake_parse_arguments(ARG "" "EXCLUDE_REGEX" "EXTRA_SOURCES;DEPS" ${ARGN})
  file(GLOB_RECURSE sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${folder}/*.cc)
  if(ARG_EXCLUDE_REGEX)
    list(FILTER sources EXCLUDE REGEX "${ARG_EXCLUDE_REGEX}")
  endif()
  add_library(slimlm_${folder} STATIC ${sources} ${ARG_EXTRA_SOURCES})
  target_include_directories(slimlm_${folder} PUBLIC ${PROJECT_SOURCE_DIR}/include
                                              PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(slimlm_${folder} PUBLIC slimlm_flags ${ARG_DEPS})
endfunction()

# slimlm_test(<name> SOURCES ... DEPS ...) declares one GoogleTest binary registered with CTest.
function(slimlm_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(${name} PRIVATE slimlm_test_support ${ARG_DEPS} GTest::gtest_main GTest::gmock)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "${ARG_LABELS}")
endfunction()
