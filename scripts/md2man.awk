# md2man.awk: turns one of sharehub's Markdown documents into a man page, so
# that docs/*.md are the only source of both (the build runs this; see
# docs/CMakeLists.txt). It knows the Markdown the documents use and no more:
#
#   # Title                the document's title: replaced by .TH and NAME
#   ## Heading             .SH HEADING;  ### Heading  .SS Heading
#   paragraphs             filled text (.PP between them)
#   - item / 1. item       .IP lists; continuation lines indented
#   - `--opt ARG`: text    .TP: an option (any item opening with code spans
#                          and a colon)
#   ``` fenced ``` and     literal blocks (.nf), indented by 4
#   4-space indented code  (8 inside a list item)
#   | a | b | tables       tbl(1) tables, the last column wrapping
#   `code` **bold** *em*   \fB \fB \fI;  [text](link) becomes text
#   <!-- exit-status -->   the exit-code table (the file given as `exits`)
#   <!-- ... -->           dropped
#
# Run with POSIX awk (Debian's mawk will do):
#   awk -v name=NAME -v section=N -v description=TEXT -v version=V \
#       -v exits=FILE -v out=PAGE -f md2man.awk DOC.md
# Every hyphen is written \- so that options copied from the page work.

# A line of text: one that would start with a control character is guarded.
function out_line(text) {
    if (text ~ /^[.']/)
        text = "\\&" text
    print text > out
}

# A request or a tbl(1) line, written as it is.
function req(text) {
    print text > out
}

# Escapes one byte (or a few known UTF-8 characters) of text for roff.
function esc(s, i,    c, three) {
    c = substr(s, i, 1)
    three = substr(s, i, 3)
    if (three == "≤") { used = 3; return "\\(<=" }
    if (three == "≥") { used = 3; return "\\(>=" }
    if (three == "—") { used = 3; return "\\(em" }
    if (three == "–") { used = 3; return "\\(en" }
    if (three == "→") { used = 3; return "\\(->" }
    used = 1
    if (c == "\\") return "\\e"
    if (c == "-") return "\\-"
    return c
}

function literal(s,    i, r) {
    r = ""
    for (i = 1; i <= length(s); i += used)
        r = r esc(s, i)
    return r
}

# Inline Markdown: code spans, bold, emphasis, links.
function inline(s,    i, r, c, j, k, text) {
    r = ""
    i = 1
    while (i <= length(s)) {
        c = substr(s, i, 1)
        if (c == "`") {
            j = index(substr(s, i + 1), "`")
            if (j > 0) {
                r = r "\\fB" literal(substr(s, i + 1, j - 1)) "\\fR"
                i += j + 1
                continue
            }
        }
        if (substr(s, i, 2) == "**") {
            j = index(substr(s, i + 2), "**")
            if (j > 0) {
                r = r "\\fB" inline(substr(s, i + 2, j - 1)) "\\fR"
                i += j + 3
                continue
            }
        }
        if (c == "*" && substr(s, i + 1, 1) != " ") {
            j = index(substr(s, i + 1), "*")
            if (j > 1) {
                r = r "\\fI" inline(substr(s, i + 1, j - 1)) "\\fR"
                i += j + 1
                continue
            }
        }
        if (c == "[") {
            j = index(substr(s, i + 1), "](")
            if (j > 0) {
                k = index(substr(s, i + j + 2), ")")
                if (k > 0) {
                    text = substr(s, i + 1, j - 1)
                    r = r inline(text)
                    i += j + 2 + k
                    continue
                }
            }
        }
        r = r esc(s, i)
        i += used
    }
    return r
}

function trim(s) {
    sub(/^ +/, "", s)
    sub(/ +$/, "", s)
    return s
}

# Ends whatever block is open.
function close_block() {
    if (mode == "code") {
        req(".fi")
        req(".RE")
    }
    if (mode == "table")
        req(".TE")
    mode = ""
}

function table_row(l,    n, cells, i, row, last) {
    gsub(/\\\|/, "\001", l)
    sub(/^ *\|/, "", l)
    sub(/\| *$/, "", l)
    n = split(l, cells, "|")
    for (i = 1; i <= n; i++) {
        cells[i] = trim(cells[i])
        gsub(/\001/, "|", cells[i])
    }
    if (cells[1] ~ /^:?-+:?$/)
        return # the separator row: the header's rule is drawn already
    if (!table_started) {
        req(".TS")
        req("tab(\t);")
        row = ""
        for (i = 1; i <= n; i++)
            row = row (i > 1 ? " " : "") "lB"
        req(row)
        row = ""
        for (i = 1; i <= n; i++)
            row = row (i > 1 ? " " : "") (i == n ? "lx." : "l")
        req(row)
        row = ""
        for (i = 1; i <= n; i++)
            row = row (i > 1 ? "\t" : "") inline(cells[i])
        out_line(row)
        req("_")
        table_started = 1
        return
    }
    row = ""
    for (i = 1; i < n; i++)
        row = row inline(cells[i]) "\t"
    out_line(row "T{")
    out_line(inline(cells[n]))
    req("T}")
}

function heading(l) {
    close_block()
    if (l ~ /^## /) {
        req(".SH " toupper(substr(l, 4)))
        in_section = 1
    } else {
        req(".SS " inline(substr(l, 5)))
    }
    para = 0
    in_list = 0
}

function line(l,    term, rest, m) {
    if (mode == "code") {
        if (fenced && l ~ /^```/) {
            close_block()
            return
        }
        if (!fenced && l != "" && substr(l, 1, code_indent) != substr(SPACES, 1, code_indent)) {
            close_block()
        } else {
            if (!fenced)
                l = substr(l, code_indent + 1)
            out_line(literal(l))
            return
        }
    }
    if (l ~ /^<!-- *exit-status *-->/) {
        close_block()
        while ((getline m < exits) > 0)
            line(m)
        close(exits)
        close_block()
        return
    }
    if (l ~ /^<!--.*-->$/)
        return
    if (l ~ /^# /)
        return # the title: .TH and NAME say it
    if (!in_section && l != "" && l !~ /^##/) {
        req(".SH DESCRIPTION")
        in_section = 1
    }
    if (l ~ /^###? /) {
        heading(l)
        return
    }
    if (l ~ /^```/) {
        close_block()
        req(".PP")
        req(".RS 4")
        req(".nf")
        mode = "code"
        fenced = 1
        return
    }
    if (l ~ /^ *\|/) {
        if (mode != "table") {
            close_block()
            mode = "table"
            table_started = 0
        }
        table_row(l)
        return
    }
    if (mode == "table")
        close_block()
    if (l == "") {
        blank = 1
        return
    }
    # Code: indented 4 spaces, or 8 inside a list item; after a blank line.
    if (blank && (in_list ? l ~ /^        / : l ~ /^    /)) {
        code_indent = in_list ? 8 : 4
        req(in_list ? ".IP \"\"" : ".PP")
        req(".RS 4")
        req(".nf")
        mode = "code"
        fenced = 0
        out_line(literal(substr(l, code_indent + 1)))
        return
    }
    if (l ~ /^[-*] `/ && match(l, /^[-*] (`[^`]*`(, `[^`]*`)*): /)) {
        term = substr(l, 3, RLENGTH - 4)
        rest = substr(l, RLENGTH + 1)
        req(".TP")
        out_line(inline(term))
        out_line(inline(rest))
        in_list = 1
    } else if (l ~ /^[-*] /) {
        req(".IP \\(bu 2")
        out_line(inline(substr(l, 3)))
        in_list = 1
    } else if (match(l, /^[0-9]+\. /)) {
        req(".IP " substr(l, 1, RLENGTH - 1) " 4")
        out_line(inline(substr(l, RLENGTH + 1)))
        in_list = 1
    } else if (in_list && l ~ /^  +/) {
        if (blank) # a further paragraph of the same item
            req(".IP \"\"")
        out_line(inline(trim(l)))
    } else {
        if (blank || in_list || !para)
            req(".PP")
        in_list = 0
        para = 1
        out_line(inline(trim(l)))
    }
    blank = 0
}

BEGIN {
    SPACES = "        "
    if (out == "")
        out = "/dev/stdout"
    print ".\\\" Generated from Markdown by scripts/md2man.awk; edit the .md source." > out
    print ".TH \"" toupper(name) "\" \"" section "\" \"\" \"sharehub " version "\" \"sharehub manual\"" > out
    print ".nh" > out
    print ".ad l" > out
    print ".SH NAME" > out
    print literal(name) " \\- " literal(description) > out
}

{ line($0) }

END {
    close_block()
}
