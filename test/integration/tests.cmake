# Integration tests: cmocka programs that drive the pooler with libpq, psql and
# pgbench against one real PostgreSQL 15 cluster per ctest run. The cluster is
# a ctest fixture (pg_fixture.sh start/stop); the tests share it one at a time
# (RESOURCE_LOCK) because they count server connections in pg_stat_activity.
# Included from test/CMakeLists.txt, which has already found cmocka.
pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)
find_package(OpenSSL REQUIRED)
find_package(Threads REQUIRED)

set(PGMUX_IT_SRC ${CMAKE_CURRENT_LIST_DIR})
set(PGMUX_IT_FIXTURE_DIR ${CMAKE_CURRENT_BINARY_DIR}/integration-fixture)

# The harness links libpq, libcrypto (raw-protocol logins: SCRAM/md5 math)
# and pthreads; never pgmux code.
add_library(pgmux_it_harness STATIC
  ${PGMUX_IT_SRC}/harness.c
  ${PGMUX_IT_SRC}/harness_raw.c)
target_include_directories(pgmux_it_harness PUBLIC ${PGMUX_IT_SRC})
target_link_libraries(pgmux_it_harness PUBLIC
  PkgConfig::CMOCKA PkgConfig::LIBPQ OpenSSL::Crypto Threads::Threads)
if(TARGET pgmux)
  target_compile_definitions(pgmux_it_harness PRIVATE
    PGMUX_DEFAULT_BIN="$<TARGET_FILE:pgmux>")
else()
  target_compile_definitions(pgmux_it_harness PRIVATE
    PGMUX_DEFAULT_BIN="${CMAKE_BINARY_DIR}/pgmux")
endif()

add_test(NAME integration_pg_start
  COMMAND ${PGMUX_IT_SRC}/pg_fixture.sh start ${PGMUX_IT_FIXTURE_DIR})
add_test(NAME integration_pg_stop
  COMMAND ${PGMUX_IT_SRC}/pg_fixture.sh stop ${PGMUX_IT_FIXTURE_DIR})
set_tests_properties(integration_pg_start PROPERTIES
  FIXTURES_SETUP pgmux_pg LABELS integration TIMEOUT 120)
set_tests_properties(integration_pg_stop PROPERTIES
  FIXTURES_CLEANUP pgmux_pg LABELS integration TIMEOUT 120)

# name -> ctest timeout in seconds (generous: the ASan build is slower).
set(PGMUX_IT_TESTS
  tx_pool:240
  session_pool:60
  auth:180
  psql:120
  pgbench:240
  lifecycle:120
  admin:60
  admin_show:60
  admin_commands:120
  fds:120
  saturation:60
  metrics:60
  exporter:60
  load:120
  timeouts:120
  limits:120
  bad_input:120
  server_failures:180
  transaction_timeouts:90
  tls:120
  session_state:90
  cancel:120
  slow_reader:120)

foreach(entry ${PGMUX_IT_TESTS})
  string(REPLACE ":" ";" parts ${entry})
  list(GET parts 0 name)
  list(GET parts 1 timeout)
  add_executable(it_${name} ${PGMUX_IT_SRC}/test_${name}.c)
  target_link_libraries(it_${name} PRIVATE pgmux_it_harness)
  if(TARGET pgmux)
    # ctest must run the binary this build just made.
    add_dependencies(it_${name} pgmux)
  endif()
  add_test(NAME integration_${name} COMMAND it_${name})
  set_tests_properties(integration_${name} PROPERTIES
    LABELS integration
    FIXTURES_REQUIRED pgmux_pg
    RESOURCE_LOCK pgmux_pg
    TIMEOUT ${timeout}
    ENVIRONMENT "PGMUX_FIXTURE_ENV=${PGMUX_IT_FIXTURE_DIR}/env")
endforeach()

# test_load.c runs pgmux-load (tools/) against the pooler.
if(TARGET pgmux-load)
  target_compile_definitions(it_load PRIVATE PGMUX_LOAD_BIN="$<TARGET_FILE:pgmux-load>")
  add_dependencies(it_load pgmux-load)
endif()
