/*
 * replay_main.c — runs a fuzz target over every file of its corpus when the
 * compiler has no libFuzzer, so corpora are regression tests everywhere.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path) {
        FILE *fp = fopen(path, "rb");
        uint8_t *buf = NULL;
        long len;

        if (!fp)
                return -1;
        if (fseek(fp, 0, SEEK_END) != 0 || (len = ftell(fp)) < 0 ||
            fseek(fp, 0, SEEK_SET) != 0) {
                fclose(fp);
                return -1;
        }
        buf = malloc(len ? (size_t)len : 1);
        if (!buf || fread(buf, 1, (size_t)len, fp) != (size_t)len) {
                free(buf);
                fclose(fp);
                return -1;
        }
        fclose(fp);
        LLVMFuzzerTestOneInput(buf, (size_t)len);
        free(buf);
        return 0;
}

int main(int argc, char **argv) {
        int i, n = 0;

        for (i = 1; i < argc; i++) {
                DIR *dir = opendir(argv[i]);
                struct dirent *de;

                if (!dir) {
                        if (replay_file(argv[i]) == 0)
                                n++;
                        continue;
                }
                while ((de = readdir(dir))) {
                        char path[4096];

                        if (de->d_name[0] == '.')
                                continue;
                        snprintf(path, sizeof(path), "%s/%s", argv[i],
                                 de->d_name);
                        if (replay_file(path) == 0)
                                n++;
                }
                closedir(dir);
        }
        printf("replayed %d inputs\n", n);
        return n > 0 ? 0 : 1;
}
