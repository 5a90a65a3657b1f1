/* lodge ctl: one request to a running VM's control socket (core/ctl.h). */
#include "core/cli.h"

#include "core/ctl.h"

#include <errno.h>
#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CLI_CTL_USAGE 2

static void cli_ctl_usage(FILE *f)
{
    fprintf(f, "usage: lodge ctl [--json] VM COMMAND [ARGS]\n"
               "\n"
               "Send one command to a running VM. VM is a name (its socket is\n"
               "$XDG_RUNTIME_DIR/lodge/VM.sock) or a socket path containing '/'.\n"
               "\n"
               "commands:\n"
               "  status               state, name and display mode\n"
               "  pause | resume       stop / restart the virtual CPUs\n"
               "  powerdown [--force]  press the ACPI power button (--force: power off now)\n"
               "  reset                hard reset\n"
               "  quit                 end the VM process at once\n"
               "  screendump FILE      save the screen as PNG (FILE.txt: text mode as text)\n"
               "  send-keys KEYS       e.g. ctrl-alt-delete, ret, a\n"
               "  input JSON           pointer or key event, e.g.\n"
               "                       '{\"type\":\"mouse\",\"dx\":5,\"dy\":-3,\"buttons\":1}'\n"
               "                       '{\"type\":\"abs\",\"x\":16384,\"y\":16384}' (0..32767)\n"
               "  events               print events until the VM stops\n"
               "\n"
               "  --json               print the reply as the VM sent it (one JSON line)\n"
               "\n"
               "Exit status: 0 done, 1 the VM refused or is not running, 2 bad usage.\n");
}

int cli_ctl_connect(const char *vm, char *path, size_t pathlen);

/* Socket path for VM (a name or a path) and a connected socket, or -errno. */
int cli_ctl_connect(const char *vm, char *path, size_t pathlen)
{
    if (strchr(vm, '/')) {
        snprintf(path, pathlen, "%s", vm);
    } else if (ctl_socket_path(vm, false, path, pathlen) < 0) {
        return -EINVAL;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* Next line from fd into line (without the newline); 0 or -errno (-EPIPE at EOF). */
static int cli_ctl_read_line(int fd, GString *buf, GString *line)
{
    for (;;) {
        char *nl = memchr(buf->str, '\n', buf->len);
        if (nl) {
            g_string_assign(line, "");
            g_string_append_len(line, buf->str, nl - buf->str);
            g_string_erase(buf, 0, nl - buf->str + 1);
            return 0;
        }
        char tmp[4096];
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return n < 0 ? -errno : -EPIPE;
        }
        g_string_append_len(buf, tmp, n);
    }
}

static void cli_ctl_print_human(const char *cmd, JsonObject *ret)
{
    if (strcmp(cmd, "status") == 0 || strcmp(cmd, "pause") == 0 || strcmp(cmd, "resume") == 0) {
        const char *state = json_object_get_string_member_with_default(ret, "state", "?");
        JsonNode *name = json_object_get_member(ret, "name");
        JsonNode *disp = json_object_get_member(ret, "display");
        printf("%s", state);
        if (name && JSON_NODE_HOLDS_VALUE(name)) {
            printf(" (%s)", json_node_get_string(name));
        }
        if (disp && JSON_NODE_HOLDS_OBJECT(disp)) {
            JsonObject *d = json_node_get_object(disp);
            printf(", display %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT,
                   json_object_get_int_member_with_default(d, "width", 0),
                   json_object_get_int_member_with_default(d, "height", 0));
        }
        printf("\n");
    }
}

int cli_ctl_main(int argc, char **argv)
{
    bool json = false, force = false;
    const char *pos[4] = {NULL};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--force") == 0) {
            force = true;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            cli_ctl_usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            fprintf(stderr, "lodge: %s: unknown option (see lodge ctl --help)\n", argv[i]);
            return CLI_CTL_USAGE;
        } else if (npos < 4) {
            pos[npos++] = argv[i];
        } else {
            fprintf(stderr, "lodge: %s: unexpected argument (see lodge ctl --help)\n", argv[i]);
            return CLI_CTL_USAGE;
        }
    }
    if (npos < 2) {
        fprintf(stderr, "lodge: ctl: give a VM and a command (see lodge ctl --help)\n");
        return CLI_CTL_USAGE;
    }
    const char *vm = pos[0], *cmd = pos[1], *arg = npos > 2 ? pos[2] : NULL;
    bool events = strcmp(cmd, "events") == 0;
    bool needs_arg = strcmp(cmd, "screendump") == 0 || strcmp(cmd, "send-keys") == 0 ||
                     strcmp(cmd, "input") == 0;
    if ((needs_arg && !arg) || (!needs_arg && arg) || npos > 3) {
        fprintf(stderr, "lodge: ctl %s: %s\n", cmd,
                needs_arg ? "needs one argument" : "takes no argument");
        return CLI_CTL_USAGE;
    }
    if (!strchr(vm, '/') && !ctl_name_valid(vm)) {
        fprintf(stderr, "lodge: %s: not a VM name or socket path\n", vm);
        return CLI_CTL_USAGE;
    }

    /* input takes the event as a JSON object whose members join the request. */
    JsonParser *argp = NULL;
    JsonObject *argo = NULL;
    if (strcmp(cmd, "input") == 0) {
        argp = json_parser_new();
        if (!json_parser_load_from_data(argp, arg, -1, NULL) ||
            !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(argp))) {
            fprintf(stderr, "lodge: ctl input: '%s' is not a JSON object (see lodge ctl --help)\n",
                    arg);
            g_object_unref(argp);
            return CLI_CTL_USAGE;
        }
        argo = json_node_get_object(json_parser_get_root(argp));
    }

    /* The request, built with json-glib so arguments are escaped properly. */
    JsonBuilder *b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "cmd");
    json_builder_add_string_value(b, events ? "status" : cmd);
    if (strcmp(cmd, "powerdown") == 0) {
        json_builder_set_member_name(b, "force");
        json_builder_add_boolean_value(b, force);
    } else if (strcmp(cmd, "screendump") == 0) {
        gchar *abs = g_canonicalize_filename(arg, NULL);
        json_builder_set_member_name(b, "file");
        json_builder_add_string_value(b, abs);
        g_free(abs);
    } else if (strcmp(cmd, "send-keys") == 0) {
        json_builder_set_member_name(b, "keys");
        json_builder_add_string_value(b, arg);
    } else if (argo) {
        GList *names = json_object_get_members(argo);
        for (GList *l = names; l; l = l->next) {
            if (strcmp(l->data, "cmd") != 0 && strcmp(l->data, "id") != 0) {
                json_builder_set_member_name(b, l->data);
                json_builder_add_value(b, json_node_copy(json_object_get_member(argo, l->data)));
            }
        }
        g_list_free(names);
        g_object_unref(argp);
    }
    json_builder_end_object(b);
    JsonNode *root = json_builder_get_root(b);
    gchar *text = json_to_string(root, FALSE);
    json_node_unref(root);
    g_object_unref(b);
    gchar *line = g_strconcat(text, "\n", NULL);
    g_free(text);

    char path[256];
    int fd = cli_ctl_connect(vm, path, sizeof(path));
    if (fd < 0) {
        if (fd == -ENOENT || fd == -ECONNREFUSED) {
            fprintf(stderr, "lodge: %s: VM is not running (no control socket at %s)\n", vm, path);
        } else {
            fprintf(stderr, "lodge: %s: %s\n", vm, strerror(-fd));
        }
        g_free(line);
        return 1;
    }
    int status = 1;
    GString *buf = g_string_new(NULL), *resp = g_string_new(NULL);
    if (write(fd, line, strlen(line)) != (ssize_t)strlen(line)) {
        fprintf(stderr, "lodge: %s: cannot send the request: %s\n", vm, strerror(errno));
        goto out;
    }
    for (;;) {
        int rc = cli_ctl_read_line(fd, buf, resp);
        if (rc < 0) {
            if (events || strcmp(cmd, "quit") == 0) {
                status = 0; /* the VM went away: that is how these end */
            } else {
                fprintf(stderr, "lodge: %s: the VM closed the connection\n", vm);
            }
            break;
        }
        JsonParser *p = json_parser_new();
        if (!json_parser_load_from_data(p, resp->str, (gssize)resp->len, NULL) ||
            !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(p))) {
            g_object_unref(p);
            fprintf(stderr, "lodge: %s: malformed reply: %s\n", vm, resp->str);
            break;
        }
        JsonObject *o = json_node_get_object(json_parser_get_root(p));
        bool is_event = json_object_has_member(o, "event");
        if (is_event && !events) {
            g_object_unref(p);
            continue;
        }
        if (events) {
            if (is_event) {
                printf("%s\n", json ? resp->str : json_object_get_string_member(o, "event"));
            }
            g_object_unref(p);
            continue;
        }
        if (json) {
            printf("%s\n", resp->str);
        }
        if (json_object_get_boolean_member_with_default(o, "ok", FALSE)) {
            status = 0;
            JsonNode *ret = json_object_get_member(o, "return");
            if (!json && ret && JSON_NODE_HOLDS_OBJECT(ret)) {
                cli_ctl_print_human(cmd, json_node_get_object(ret));
            }
        } else {
            fprintf(stderr, "lodge: %s: %s: %s\n", vm, cmd,
                    json_object_get_string_member_with_default(o, "error", "failed"));
        }
        g_object_unref(p);
        break;
    }
out:
    g_string_free(buf, TRUE);
    g_string_free(resp, TRUE);
    g_free(line);
    close(fd);
    return status;
}
