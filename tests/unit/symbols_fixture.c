/*
 * symbols_fixture: a library with one global that lacks the shub_ prefix,
 * so test_symbols.sh is seen to catch one (unit.symbols_catch).
 */
int shub_symbols_fixture_fine(void);
int unprefixed_helper(void);

int shub_symbols_fixture_fine(void)
{
    return 1;
}

int unprefixed_helper(void)
{
    return 2;
}
