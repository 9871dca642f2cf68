// Command compose loads a compose file the way `docker compose` does, with
// compose-go (the library inside docker compose) at the version pinned in
// go.mod, and prints the normalized project as JSON. The tests check
// docker-compose.yml with it on machines without Docker.
//
//	compose [-f docker-compose.yml] [--project-directory DIR] [--env KEY=VALUE]...
//
// Variables come from the process environment, then the project's .env file;
// --env entries win over both. Any load, interpolation or validation error:
// the message on stderr, exit 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

type envFlags []string

func (e *envFlags) String() string     { return fmt.Sprint(*e) }
func (e *envFlags) Set(v string) error { *e = append(*e, v); return nil }

func main() {
	file := flag.String("f", "docker-compose.yml", "compose file")
	dir := flag.String("project-directory", "", "project directory (default: the compose file's directory)")
	var env envFlags
	flag.Var(&env, "env", "KEY=VALUE for interpolation, over the process environment (repeatable)")
	flag.Parse()

	if err := run(*file, *dir, env); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(file, dir string, env []string) error {
	// The same options, in the same order, as docker compose's own loader
	// (cmd/compose: toProjectOptions, then `config`'s interpolation, path,
	// normalization and consistency switches, all on).
	options, err := cli.NewProjectOptions([]string{file},
		cli.WithWorkingDirectory(dir),
		cli.WithEnv(env),
		cli.WithOsEnv,
		cli.WithEnvFiles(),
		cli.WithDotEnv,
		cli.WithDefaultProfiles(),
		cli.WithInterpolation(true),
		cli.WithResolvedPaths(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithDiscardEnvFile,
	)
	if err != nil {
		return err
	}
	// LoadProject is what the deprecated cli.ProjectFromOptions calls.
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return err
	}
	out, err := project.MarshalJSON()
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(out, '\n'))
	return err
}
