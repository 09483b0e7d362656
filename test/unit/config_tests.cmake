# Unit tests for pooler/config.c and pooler/log.c (cmocka, label "unit").
# Included from test/CMakeLists.txt, which finds PkgConfig::CMOCKA; the top
# level finds PkgConfig::INIH. Paths are absolute because include() keeps
# the including directory (test/) as the current source dir.

add_executable(test_config
  ${PROJECT_SOURCE_DIR}/test/unit/test_config.c
  ${PROJECT_SOURCE_DIR}/pooler/config.c
  ${PROJECT_SOURCE_DIR}/pooler/userlist.c
  ${PROJECT_SOURCE_DIR}/pooler/log.c)
target_include_directories(test_config PRIVATE
  ${PROJECT_SOURCE_DIR}/pooler
  ${PROJECT_SOURCE_DIR}/protocol)
target_link_libraries(test_config PRIVATE PkgConfig::INIH PkgConfig::CMOCKA m)
add_test(NAME unit_config COMMAND test_config)
set_tests_properties(unit_config PROPERTIES LABELS unit)

add_executable(test_log
  ${PROJECT_SOURCE_DIR}/test/unit/test_log.c
  ${PROJECT_SOURCE_DIR}/pooler/log.c)
target_include_directories(test_log PRIVATE ${PROJECT_SOURCE_DIR}/pooler)
target_link_libraries(test_log PRIVATE PkgConfig::CMOCKA)
add_test(NAME unit_log COMMAND test_log)
set_tests_properties(unit_log PROPERTIES LABELS unit)
