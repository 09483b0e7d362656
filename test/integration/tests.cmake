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
  auth_query:300
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
  hba:90
  cancel:120
  slow_reader:120
  set_isolation:120
  prepared:240
  sql_prepared:120)

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

# Real client drivers (test/drivers/, label "drivers"): one ctest per driver,
# each running `it_drivers <driver>`, which starts pgmux in transaction mode
# (pool 5) and the driver's script with 200 connections. Node packages come
# from test/drivers/node/package-lock.json (npm ci in scripts/deps.sh);
# Python drivers from Debian (/usr/bin/python3).
get_filename_component(PGMUX_DRIVERS_DIR ${PGMUX_IT_SRC}/../drivers ABSOLUTE)
add_executable(it_drivers ${PGMUX_IT_SRC}/test_drivers.c)
target_link_libraries(it_drivers PRIVATE pgmux_it_harness)
target_compile_definitions(it_drivers PRIVATE
  PGMUX_DRIVERS_DIR="${PGMUX_DRIVERS_DIR}")
if(TARGET pgmux)
  add_dependencies(it_drivers pgmux)
endif()
foreach(driver pg_named postgres_js psycopg2 psycopg3 asyncpg)
  add_test(NAME drivers_${driver} COMMAND it_drivers ${driver})
  set_tests_properties(drivers_${driver} PROPERTIES
    LABELS "integration;drivers"
    FIXTURES_REQUIRED pgmux_pg
    RESOURCE_LOCK pgmux_pg
    TIMEOUT 300
    ENVIRONMENT "PGMUX_FIXTURE_ENV=${PGMUX_IT_FIXTURE_DIR}/env")
endforeach()

# PostgreSQL 15's regression suite subset (shared/pg-regress beside the
# repository, label "regress") through pgmux in session mode; regress_direct
# runs it against PostgreSQL as the baseline (in the plain build only: it
# does not involve pgmux). A missing directory fails the tests, never skips.
# ../shared beside the checkout; a clone made elsewhere (CI's clean checkout,
# `git clone . /tmp/x`) falls back to the workspace's copy.
set(PGMUX_PG_REGRESS_DEFAULT "${CMAKE_SOURCE_DIR}/../shared/pg-regress")
if(NOT EXISTS "${PGMUX_PG_REGRESS_DEFAULT}/schedule" AND EXISTS "/work/shared/pg-regress/schedule")
  set(PGMUX_PG_REGRESS_DEFAULT "/work/shared/pg-regress")
endif()
set(PGMUX_PG_REGRESS_DIR "${PGMUX_PG_REGRESS_DEFAULT}" CACHE PATH
  "pg_regress input directory (sql/, expected/, data/, schedule)")
set(PGMUX_PG_REGRESS_BIN
  "/usr/lib/postgresql/15/lib/pgxs/src/test/regress/pg_regress" CACHE FILEPATH
  "pg_regress from postgresql-server-dev-15")
get_filename_component(PGMUX_PG_REGRESS_DIR_ABS ${PGMUX_PG_REGRESS_DIR} ABSOLUTE)
add_executable(it_regress ${PGMUX_IT_SRC}/test_regress.c)
target_link_libraries(it_regress PRIVATE pgmux_it_harness)
target_compile_definitions(it_regress PRIVATE
  PGMUX_PG_REGRESS_DIR="${PGMUX_PG_REGRESS_DIR_ABS}"
  PGMUX_PG_REGRESS_BIN="${PGMUX_PG_REGRESS_BIN}")
if(TARGET pgmux)
  add_dependencies(it_regress pgmux)
endif()
set(PGMUX_REGRESS_RUNS regress_pgmux)
if(NOT PGMUX_SANITIZE)
  list(APPEND PGMUX_REGRESS_RUNS regress_direct)
endif()
foreach(run ${PGMUX_REGRESS_RUNS})
  add_test(NAME ${run} COMMAND it_regress ${run})
  set_tests_properties(${run} PROPERTIES
    LABELS "integration;regress"
    FIXTURES_REQUIRED pgmux_pg
    RESOURCE_LOCK pgmux_pg
    TIMEOUT 480
    ENVIRONMENT "PGMUX_FIXTURE_ENV=${PGMUX_IT_FIXTURE_DIR}/env")
endforeach()
