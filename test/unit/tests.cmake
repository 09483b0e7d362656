# Unit tests: one cmocka program per module, test/unit/test_<module>.c, each
# registered as ctest "unit_<module>" with label "unit". Included from
# test/CMakeLists.txt, which has already found cmocka (PkgConfig::CMOCKA).

# pgmux_unit_test(<module> <library>): builds test_<module>.c against <library>.
function(pgmux_unit_test module library)
  add_executable(test_${module} ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/test_${module}.c)
  target_link_libraries(test_${module} PRIVATE ${library} PkgConfig::CMOCKA)
  add_test(NAME unit_${module} COMMAND test_${module})
  set_tests_properties(unit_${module} PROPERTIES LABELS unit)
endfunction()

# protocol/: pure code, so these need nothing but pgmux_protocol.
foreach(module
    proto_cursor
    proto_frame
    proto_build
    proto_startup
    proto_parse
    auth_md5
    auth_scram)
  pgmux_unit_test(${module} pgmux_protocol)
endforeach()

# pooler/ pieces that are pure code (no loop, no sockets): link the core.
foreach(module
    hist
    conn_tcp
    hba
    prepared
    params
    sqlprep)
  pgmux_unit_test(${module} pgmux_core)
endforeach()

# tools/: pgmux-load's pure pieces (option parser, report); the histogram
# they share with pgmux has its own test above.
foreach(module
    load_opts
    load_report)
  pgmux_unit_test(${module} pgmux_load_core)
endforeach()
