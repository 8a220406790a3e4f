package app

import (
	"fmt"

	"github.com/spf13/cobra"
)

func demoCommand(pio IO, exit *int) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Run the whole job against an in-process registry and a sample image",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return fmt.Errorf("demo: not implemented yet")
		},
	}
}
