# sharehub-audit as a user runs it, on the query tests' fixture database
# (test_query --make-db writes it); tampering is done with the sqlite3 shell.
# Included from tests/integration/CMakeLists.txt.
if(TARGET sharehub-audit AND TARGET test_query)
    add_test(NAME integration.audit
             COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test_audit_cli.sh
                     $<TARGET_FILE:sharehub-audit> $<TARGET_FILE:test_query>)
    set_tests_properties(integration.audit PROPERTIES LABELS integration TIMEOUT 120)
endif()
