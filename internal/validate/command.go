package validate

import (
	"strings"
)

// Command injection detection. The detector looks for shell syntax in
// context rather than for characters: a command position (the start of the
// value, or what follows ; | || && & a newline $( <( >( or a backtick) that
// holds a known command, with arguments that look like a shell's. Prose has
// semicolons, pipes and the word "cat"; it rarely has "; cat /etc/passwd".
//
// Everything here is a single forward scan with bounded look-ahead, so it is
// linear in the length of the input.

// tier says how much context a command word needs before it is reported.
type tier uint8

const (
	// tierArgs words are also ordinary English ("cat", "sleep", "type"):
	// they need shell-like arguments ("; cat /etc/passwd").
	tierArgs tier = iota + 1
	// tierBare words rarely occur in prose; after ; | newline or a
	// substitution they are reported even with no arguments ("; id").
	tierBare
	// tierAlways words are reported with no arguments after any separator,
	// including a single & ("& whoami").
	tierAlways
)

// unixCommands are matched case-sensitively, as a Unix shell would run them.
var unixCommands = map[string]tier{
	"cat": tierArgs, "tac": tierArgs, "more": tierArgs, "less": tierArgs, "head": tierArgs, "tail": tierArgs,
	"echo": tierArgs, "printf": tierArgs, "sleep": tierArgs, "ping": tierArgs, "rm": tierArgs, "cp": tierArgs,
	"mv": tierArgs, "touch": tierArgs, "find": tierArgs, "grep": tierArgs, "awk": tierArgs, "sed": tierArgs,
	"kill": tierArgs, "chmod": tierArgs, "chown": tierArgs, "python": tierArgs, "python3": tierArgs,
	"python2": tierArgs, "perl": tierArgs, "ruby": tierArgs, "php": tierArgs, "node": tierArgs, "lua": tierArgs,
	"sudo": tierArgs, "su": tierArgs, "nohup": tierArgs, "timeout": tierArgs, "exec": tierArgs, "eval": tierArgs,
	"sort": tierArgs, "cut": tierArgs, "tee": tierArgs, "dd": tierArgs, "tar": tierArgs, "mkdir": tierArgs,
	"xargs": tierArgs, "od": tierArgs, "strings": tierArgs, "nl": tierArgs, "rev": tierArgs, "dig": tierArgs,
	"host": tierArgs, "telnet": tierArgs, "ssh": tierArgs, "scp": tierArgs, "ftp": tierArgs, "tftp": tierArgs,
	"openssl": tierArgs, "crontab": tierArgs, "export": tierArgs, "env": tierBare, "printenv": tierBare,
	"id": tierBare, "ls": tierBare, "pwd": tierBare, "ps": tierBare, "sh": tierBare, "bash": tierBare,
	"zsh": tierBare, "ksh": tierBare, "dash": tierBare, "csh": tierBare, "tcsh": tierBare, "nc": tierBare,
	"w": tierArgs, "who": tierArgs, "last": tierArgs, "history": tierArgs, "reboot": tierBare, "halt": tierBare,
	"whoami": tierAlways, "uname": tierAlways, "ifconfig": tierAlways, "hostname": tierBare, "netstat": tierAlways,
	"nslookup": tierAlways, "wget": tierAlways, "curl": tierAlways, "ncat": tierAlways, "netcat": tierAlways,
	"socat": tierAlways, "busybox": tierAlways, "base64": tierArgs, "xxd": tierArgs, "getent": tierAlways,
	"passwd": tierBare, "useradd": tierAlways, "mkfifo": tierAlways, "chattr": tierAlways, "shutdown": tierBare,
	"systemctl": tierAlways, "lsof": tierAlways, "nmap": tierAlways, "ip": tierArgs, "arp": tierArgs,
}

// windowsCommands are matched case-insensitively, as cmd.exe runs them.
var windowsCommands = map[string]tier{
	"whoami": tierAlways, "ipconfig": tierAlways, "systeminfo": tierAlways, "tasklist": tierAlways,
	"taskkill": tierAlways, "powershell": tierAlways, "cmd": tierArgs, "net": tierArgs, "dir": tierArgs,
	"type": tierArgs, "certutil": tierAlways, "bitsadmin": tierAlways, "wmic": tierAlways, "reg": tierArgs,
	"ver": tierBare, "ping": tierArgs, "nslookup": tierAlways, "timeout": tierArgs, "del": tierArgs,
}

// position is the kind of command position a scan found.
type position uint8

const (
	posStart    position = iota // start of the value
	posWeak                     // after ; | or a newline
	posAmp                      // after a single &
	posStrong                   // after && || $( <( >(, or a backtick glued to other text
	posMarkdown                 // after a backtick preceded by a space: likely Markdown code
)

// detectCommand reports whether s looks like shell command injection.
func detectCommand(s string) bool {
	if strings.Contains(s, "$IFS") || strings.Contains(s, "${IFS}") ||
		strings.Contains(s, "/dev/tcp/") || strings.Contains(s, "/dev/udp/") {
		return true
	}
	if commandAt(s, 0, posStart) {
		return true
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ';', '\n', '\r':
			if commandAt(s, i+1, posWeak) {
				return true
			}
		case '|':
			if i+1 < len(s) && s[i+1] == '|' {
				i++
				if commandAt(s, i+1, posStrong) {
					return true
				}
			} else if commandAt(s, i+1, posWeak) {
				return true
			}
		case '&':
			if i+1 < len(s) && s[i+1] == '&' {
				i++
				if commandAt(s, i+1, posStrong) {
					return true
				}
			} else if commandAt(s, i+1, posAmp) {
				return true
			}
		case '`':
			p := posStrong
			if i > 0 && (s[i-1] == ' ' || s[i-1] == '\t' || s[i-1] == '(') {
				p = posMarkdown
			}
			if commandAt(s, i+1, p) {
				return true
			}
		case '$', '<', '>':
			if i+1 < len(s) && s[i+1] == '(' {
				if commandAt(s, i+2, posStrong) {
					return true
				}
				continue
			}
			if c != '$' && redirectsToSensitive(s[i+1:]) {
				return true
			}
		}
	}
	return false
}

// redirectsToSensitive reports whether the text after a < or > names a
// system path ("> /etc/cron.d/x", ">>/tmp/x", "< /etc/passwd").
func redirectsToSensitive(s string) bool {
	i := 0
	for i < len(s) && i < maxSkip && (s[i] == '>' || s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return isSystemPath(s[i:])
}

// isSystemPath reports whether s starts with an absolute path into a system
// directory, a home directory or a Windows drive.
func isSystemPath(s string) bool {
	if s == "" {
		return false
	}
	switch c := s[0]; {
	case c == '/':
		rest := s[1:]
		for _, d := range systemDirs {
			if strings.HasPrefix(rest, d) && (len(rest) == len(d) || rest[len(d)] == '/' || rest[len(d)] == ' ') {
				return true
			}
		}
	case c == '~':
		return len(s) > 1 && s[1] == '/'
	case len(s) > 2 && s[1] == ':' && (s[2] == '\\' || s[2] == '/') && isAlpha(c):
		return true // C:\Windows
	}
	return false
}

// maxSkip and maxToken bound every look-ahead, which keeps the scan linear
// however the separators are arranged.
const (
	maxSkip  = 64
	maxToken = 256
)

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\v' || c == '\f' }

// commandAt reports whether the command position at s[i:] holds a command
// with enough context for p.
func commandAt(s string, i int, p position) bool {
	for k := 0; i < len(s) && k < maxSkip && (isSpace(s[i]) || s[i] == '{' || s[i] == '('); k++ {
		i++
	}
	word, end := readWord(s, i)
	if word == "" {
		return false
	}
	// A command name ends where the shell would end it: "ftp:" or "cat's"
	// is not a command.
	if end < len(s) && strings.IndexByte(" \t\v\f,;|&`)}\n\r#<>", s[end]) < 0 {
		return false
	}
	t := lookup(word)
	if t == 0 {
		return false
	}
	// Skip the separators between a command and its first argument: spaces,
	// brace-expansion commas.
	j := end
	for k := 0; j < len(s) && k < maxSkip && (isSpace(s[j]) || s[j] == ','); k++ {
		j++
	}
	bare := j == len(s) || strings.IndexByte(";|&`)}\n\r#", s[j]) >= 0
	arg := argNone
	// Classify up to three arguments and keep the most shell-like.
	for n := 0; n < 3 && !bare && j < len(s); n++ {
		a := argClass(s[j:])
		if a == argNumber && (word == "sleep" || word == "ping" || word == "timeout") {
			a = argWeak
		}
		arg = max(arg, a)
		k := j
		for k < len(s) && k-j < maxToken && !isSpace(s[k]) && strings.IndexByte(";|&`\n\r", s[k]) < 0 {
			k++
		}
		if k == j || k == len(s) || !isSpace(s[k]) {
			break
		}
		for m := 0; k < len(s) && m < maxSkip && isSpace(s[k]); m++ {
			k++
		}
		j = k
	}
	switch p {
	case posStart:
		return arg == argStrong
	case posMarkdown:
		return arg == argStrong
	case posAmp:
		return arg == argStrong || arg == argWeak || (bare && t == tierAlways)
	case posWeak:
		return arg == argStrong || arg == argWeak || (bare && t >= tierBare)
	case posStrong:
		return arg == argStrong || arg == argWeak || bare || t >= tierBare
	}
	return false
}

// lookup returns the tier of a command word, or 0. A word with a directory
// ("/bin/cat") is looked up by its base name; a path with glob characters
// in it ("/???/c?t") is taken for an obfuscated command.
func lookup(word string) tier {
	base := word
	if k := strings.LastIndexByte(word, '/'); k >= 0 {
		base = word[k+1:]
		if strings.ContainsAny(word, "?*") && word[0] == '/' {
			return tierBare
		}
	}
	if t := unixCommands[base]; t != 0 {
		return t
	}
	if len(base) <= 12 {
		var buf [12]byte
		for k := 0; k < len(base); k++ {
			c := base[k]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf[k] = c
		}
		return windowsCommands[string(buf[:len(base)])]
	}
	return 0
}

// readWord reads a shell word starting at s[i], dropping the quoting and
// empty expansions that split a command name without changing it (c'a't,
// w"h"oami, w\ho\am\i, who$()ami, c$@at, ca$u t). It returns the word and the
// index after it. Words longer than 40 bytes are not commands: it gives up.
func readWord(s string, i int) (string, int) {
	var buf [40]byte
	n := 0
	for i < len(s) {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '_', c == '-', c == '.', c == '/', c == '?', c == '*':
			if n == len(buf) {
				return "", i
			}
			buf[n] = c
			n++
			i++
		case c == '\'' || c == '"' || c == '\\':
			i++
		case c == '$':
			// $@ $* $1 and ${} $() are empty; $name is an (unset) variable.
			k := i + 1
			switch {
			case k < len(s) && (s[k] == '@' || s[k] == '*' || ('0' <= s[k] && s[k] <= '9')):
				i = k + 1
			case k+1 < len(s) && ((s[k] == '{' && s[k+1] == '}') || (s[k] == '(' && s[k+1] == ')')):
				i = k + 2
			case k < len(s) && (s[k] == '_' || ('a' <= s[k] && s[k] <= 'z') || ('A' <= s[k] && s[k] <= 'Z')):
				for k < len(s) && (s[k] == '_' || ('a' <= s[k] && s[k] <= 'z') || ('A' <= s[k] && s[k] <= 'Z') || ('0' <= s[k] && s[k] <= '9')) {
					k++
				}
				i = k
			default:
				return string(buf[:n]), i
			}
		default:
			return string(buf[:n]), i
		}
	}
	return string(buf[:n]), i
}

// argument classes, from most to least shell-like.
const (
	argNone   = iota
	argPlain  // an ordinary word
	argNumber // a number ("sleep 5")
	argWeak   // an option, a path, a file name or host name
	argStrong // a system path, a URL, an IP address, a redirection or expansion
)

var systemDirs = []string{
	"etc", "bin", "sbin", "usr", "var", "tmp", "dev", "proc", "root", "home", "opt", "boot", "sys", "???",
}

// argClass classifies the argument at the start of s.
func argClass(s string) int {
	if s == "" {
		return argNone
	}
	if isSystemPath(s) {
		return argStrong
	}
	switch c := s[0]; {
	case c == '<' || c == '>':
		if redirectsToSensitive(s[1:]) {
			return argStrong
		}
		return argWeak
	case c == '$' || c == '`':
		return argStrong
	case c == '/' || c == '~' || c == '%' || c == '\\' || c == '\'' || c == '"':
		return argWeak
	case c == '.' && len(s) > 1 && (s[1] == '/' || s[1] == '.'):
		return argWeak
	case c == '-' && len(s) > 1 && (isAlnum(s[1]) || s[1] == '-'):
		return argWeak
	}
	tok := s[:min(len(s), maxToken)]
	if k := strings.IndexAny(tok, " \t;|&`)\n\r"); k >= 0 {
		tok = s[:k]
	}
	low := strings.ToLower(tok)
	if strings.HasPrefix(low, "http://") || strings.HasPrefix(low, "https://") ||
		strings.HasPrefix(low, "ftp://") || strings.HasPrefix(low, "tftp://") {
		return argStrong
	}
	if isIPv4(tok) {
		return argStrong
	}
	allDigits := true
	for k := 0; k < len(tok); k++ {
		if tok[k] < '0' || tok[k] > '9' {
			allDigits = false
			break
		}
	}
	if allDigits {
		return argNumber
	}
	// name.ext or host.name: a dot between two alphanumerics.
	for k := 1; k+1 < len(tok); k++ {
		if tok[k] == '.' && isAlnum(tok[k-1]) && isAlpha(tok[k+1]) {
			return argWeak
		}
	}
	return argPlain
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isAlnum(c byte) bool { return isAlpha(c) || '0' <= c && c <= '9' }

// isIPv4 reports whether s starts with a dotted quad (port or path may follow).
func isIPv4(s string) bool {
	parts := 0
	digits := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9':
			digits++
			if digits > 3 {
				return false
			}
		case c == '.' && digits > 0 && parts < 3:
			parts++
			digits = 0
		default:
			return parts == 3 && digits > 0
		}
	}
	return parts == 3 && digits > 0
}
