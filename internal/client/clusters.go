package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/oracle/oci-go-sdk/v65/generativeai"
)

// ClusterCreateParams describe a CreateDedicatedAiCluster.
type ClusterCreateParams struct {
	CompartmentID string
	DisplayName   string
	Description   string
	Type          string // FINE_TUNING (default) or HOSTING
	UnitShape     string
	UnitCount     int
	RetryToken    string
	Wait          bool
}

// CreateCluster creates a dedicated AI cluster and prints it (with Wait,
// once its work request is finished).
func (c *Client) CreateCluster(ctx context.Context, p ClusterCreateParams) error {
	if p.UnitShape == "" {
		return errors.New("--unit-shape is required")
	}
	if p.Type == "" {
		p.Type = "FINE_TUNING"
	}
	if p.UnitCount == 0 {
		p.UnitCount = 1
	}
	d := generativeai.CreateDedicatedAiClusterDetails{
		Type:          generativeai.DedicatedAiClusterTypeEnum(p.Type),
		CompartmentId: c.compartment(p.CompartmentID),
		UnitCount:     &p.UnitCount,
		UnitShape:     generativeai.DedicatedAiClusterUnitShapeEnum(p.UnitShape),
	}
	if p.DisplayName != "" {
		d.DisplayName = &p.DisplayName
	}
	if p.Description != "" {
		d.Description = &p.Description
	}
	req := generativeai.CreateDedicatedAiClusterRequest{CreateDedicatedAiClusterDetails: d}
	if p.RetryToken != "" {
		req.OpcRetryToken = &p.RetryToken
	}
	r, err := c.GenAI.CreateDedicatedAiCluster(ctx, req)
	if err != nil {
		return wrap("create dedicated AI cluster", err)
	}
	if !p.Wait {
		return Print(c.out(), c.Format, r.DedicatedAiCluster, map[string]string{"etag": deref(r.Etag), "opc-work-request-id": deref(r.OpcWorkRequestId)})
	}
	return c.waitAndPrintCluster(ctx, deref(r.Id), deref(r.OpcWorkRequestId))
}

func (c *Client) waitAndPrintCluster(ctx context.Context, id, wrID string) error {
	wr, err := c.WaitWorkRequest(ctx, wrID)
	if err != nil {
		return err
	}
	g, err := c.GenAI.GetDedicatedAiCluster(ctx, generativeai.GetDedicatedAiClusterRequest{DedicatedAiClusterId: &id})
	if err != nil {
		return wrap(fmt.Sprintf("get dedicated AI cluster %s", id), err)
	}
	if err := Print(c.out(), c.Format, g.DedicatedAiCluster, map[string]string{"etag": deref(g.Etag)}); err != nil {
		return err
	}
	if wr.Status != generativeai.OperationStatusSucceeded {
		return fmt.Errorf("work request %s %s: %s", wrID, wr.Status, c.workRequestErrorText(ctx, wrID))
	}
	return nil
}

// GetCluster prints a dedicated AI cluster.
func (c *Client) GetCluster(ctx context.Context, id string) error {
	r, err := c.GenAI.GetDedicatedAiCluster(ctx, generativeai.GetDedicatedAiClusterRequest{DedicatedAiClusterId: &id})
	if err != nil {
		return wrap(fmt.Sprintf("get dedicated AI cluster %s", id), err)
	}
	return Print(c.out(), c.Format, r.DedicatedAiCluster, map[string]string{"etag": deref(r.Etag)})
}

// ClusterListParams filter ListDedicatedAiClusters.
type ClusterListParams struct {
	CompartmentID  string
	DisplayName    string
	LifecycleState string
	Limit          int
	All            bool
}

// ListClusters prints the dedicated AI clusters of a compartment.
func (c *Client) ListClusters(ctx context.Context, p ClusterListParams) error {
	req := generativeai.ListDedicatedAiClustersRequest{CompartmentId: c.compartment(p.CompartmentID)}
	if p.DisplayName != "" {
		req.DisplayName = &p.DisplayName
	}
	if p.LifecycleState != "" {
		req.LifecycleState = generativeai.DedicatedAiClusterLifecycleStateEnum(p.LifecycleState)
	}
	if p.Limit > 0 {
		req.Limit = &p.Limit
	}
	var items []generativeai.DedicatedAiClusterSummary
	for {
		r, err := c.GenAI.ListDedicatedAiClusters(ctx, req)
		if err != nil {
			return wrap("list dedicated AI clusters", err)
		}
		items = append(items, r.Items...)
		if !p.All || r.OpcNextPage == nil || *r.OpcNextPage == "" {
			break
		}
		req.Page = r.OpcNextPage
	}
	if items == nil {
		items = []generativeai.DedicatedAiClusterSummary{}
	}
	return Print(c.out(), c.Format, items, nil)
}

// ClusterUpdateParams are the updatable fields; nil means unchanged.
type ClusterUpdateParams struct {
	DisplayName, Description *string
	UnitCount                *int
	IfMatch                  string
	Wait                     bool
}

// UpdateCluster updates a dedicated AI cluster and prints it.
func (c *Client) UpdateCluster(ctx context.Context, id string, p ClusterUpdateParams) error {
	req := generativeai.UpdateDedicatedAiClusterRequest{DedicatedAiClusterId: &id, UpdateDedicatedAiClusterDetails: generativeai.UpdateDedicatedAiClusterDetails{
		DisplayName: p.DisplayName, Description: p.Description, UnitCount: p.UnitCount,
	}}
	if p.IfMatch != "" {
		req.IfMatch = &p.IfMatch
	}
	r, err := c.GenAI.UpdateDedicatedAiCluster(ctx, req)
	if err != nil {
		return wrap(fmt.Sprintf("update dedicated AI cluster %s", id), err)
	}
	if p.Wait && r.OpcWorkRequestId != nil {
		return c.waitAndPrintCluster(ctx, id, *r.OpcWorkRequestId)
	}
	return Print(c.out(), c.Format, r.DedicatedAiCluster, map[string]string{"etag": deref(r.Etag), "opc-work-request-id": deref(r.OpcWorkRequestId)})
}

// DeleteCluster deletes a dedicated AI cluster; with wait it waits for
// the work request and prints the cluster's final state.
func (c *Client) DeleteCluster(ctx context.Context, id, ifMatch string, wait bool) error {
	req := generativeai.DeleteDedicatedAiClusterRequest{DedicatedAiClusterId: &id}
	if ifMatch != "" {
		req.IfMatch = &ifMatch
	}
	r, err := c.GenAI.DeleteDedicatedAiCluster(ctx, req)
	if err != nil {
		return wrap(fmt.Sprintf("delete dedicated AI cluster %s", id), err)
	}
	if wait {
		return c.waitAndPrintCluster(ctx, id, deref(r.OpcWorkRequestId))
	}
	fmt.Fprintf(c.errw(), "deleting dedicated AI cluster %s; work request %s\n", id, deref(r.OpcWorkRequestId))
	return nil
}
